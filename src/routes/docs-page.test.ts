import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
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

describe('/docs', () => {
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
});
