import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { type DocsAssets, SWAGGER_UI_VERSION } from '../routes/docs-page.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { swaggerUiFiles } from './swagger-ui-files.js';

/** the src and integrity of each file the page loads */
function pageFiles(html: string): { url: string; integrity: string }[] {
  return [...html.matchAll(/(?:src|href)="([^"]+)" integrity="([^"]+)" crossorigin="anonymous"/g)].map(
    (m) => ({ url: m[1]!, integrity: m[2]! }),
  );
}

function installed(): DocsAssets {
  const found = swaggerUiFiles();
  if (!found.assets) throw new Error(found.reason);
  return found.assets;
}

describe('/docs with the swagger-ui-dist package (the Node entry)', () => {
  it('loads Swagger UI from this instance when the entry gives its files, each as the integrity the page names', async () => {
    const app = createApp(createMemoryServices({ docsAssets: installed() }));
    const page = await app.request('/docs');
    expect(page.status).toBe(200);
    const files = pageFiles(await page.text());
    expect(files.map((f) => f.url).sort()).toEqual([
      `/docs/assets/swagger-ui-dist@${SWAGGER_UI_VERSION}/swagger-ui-bundle.js`,
      `/docs/assets/swagger-ui-dist@${SWAGGER_UI_VERSION}/swagger-ui.css`,
    ]);
    for (const { url, integrity } of files) {
      const res = await app.request(url);
      expect(res.status, url).toBe(200);
      expect(res.headers.get('Content-Type')).toMatch(
        url.endsWith('.js') ? /^text\/javascript/ : /^text\/css/,
      );
      expect(res.headers.get('Cache-Control')).toBe('public, max-age=31536000, immutable');
      expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
      const digest = createHash('sha384')
        .update(new Uint8Array(await res.arrayBuffer()))
        .digest('base64');
      // a browser refuses bytes whose sha384 is not the page's
      expect(`sha384-${digest}`, url).toBe(integrity);
    }
  });

  it('finds the installed package of the pinned release, and says why not for another place', () => {
    expect(swaggerUiFiles().assets).toBeDefined();
    const elsewhere = swaggerUiFiles('file:///nonexistent/dir/x.js');
    expect(elsewhere.assets).toBeUndefined();
    expect(elsewhere.assets ? '' : elsewhere.reason).toContain('swagger-ui-dist package is not installed');
  });
});
