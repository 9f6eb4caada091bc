import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { swaggerUiFiles } from '../entry/swagger-ui-files.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { type DocsAssets, SWAGGER_UI_VERSION } from './docs-page.js';

/** the src and integrity of each file the page loads */
function pageFiles(html: string): { url: string; integrity: string }[] {
  return [...html.matchAll(/(?:src|href)="([^"]+)" integrity="([^"]+)" crossorigin="anonymous"/g)].map(
    (m) => ({
      url: m[1]!,
      integrity: m[2]!,
    }),
  );
}

function installed(): DocsAssets {
  const found = swaggerUiFiles();
  if (!found.assets) throw new Error(found.reason);
  return found.assets;
}

describe('/docs', () => {
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

  it('loads them from jsDelivr, pinned, without the files', async () => {
    const app = createApp(createMemoryServices());
    const files = pageFiles(await (await app.request('/docs')).text());
    expect(files.map((f) => f.url).sort()).toEqual([
      `https://cdn.jsdelivr.net/npm/swagger-ui-dist@${SWAGGER_UI_VERSION}/swagger-ui-bundle.js`,
      `https://cdn.jsdelivr.net/npm/swagger-ui-dist@${SWAGGER_UI_VERSION}/swagger-ui.css`,
    ]);
    expect(
      (await app.request(`/docs/assets/swagger-ui-dist@${SWAGGER_UI_VERSION}/swagger-ui.css`)).status,
    ).toBe(404);
  });

  it('serves no other file, and answers a file it cannot read 404 then reads it again', async () => {
    let failing = true;
    const reads: string[] = [];
    const assets: DocsAssets = {
      read: async (file) => {
        reads.push(file);
        if (failing) throw new Error('EACCES');
        return new TextEncoder().encode('body{}');
      },
    };
    const app = createApp(createMemoryServices({ docsAssets: assets }));
    const base = `/docs/assets/swagger-ui-dist@${SWAGGER_UI_VERSION}`;
    for (const path of [
      `${base}/package.json`,
      `${base}/index.html`,
      '/docs/assets/swagger-ui-dist@5.0.0/swagger-ui.css',
    ]) {
      const res = await app.request(path);
      expect(res.status, path).toBe(404);
      expect(res.headers.get('Content-Type')).toContain('application/problem+json');
    }
    expect(reads).toEqual([]);
    expect((await app.request(`${base}/swagger-ui.css`)).status).toBe(404);
    failing = false;
    const again = await app.request(`${base}/swagger-ui.css`);
    expect([again.status, await again.text()]).toEqual([200, 'body{}']);
    await app.request(`${base}/swagger-ui.css`);
    // read once after the failure, then kept
    expect(reads).toEqual(['swagger-ui.css', 'swagger-ui.css']);
  });

  it('finds the installed package of the pinned release, and says why not for another place', () => {
    expect(swaggerUiFiles().assets).toBeDefined();
    const elsewhere = swaggerUiFiles('file:///nonexistent/dir/x.js');
    expect(elsewhere.assets).toBeUndefined();
    expect(elsewhere.assets ? '' : elsewhere.reason).toContain('swagger-ui-dist package is not installed');
  });
});
