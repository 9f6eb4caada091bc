/**
 * `/docs` on the running stack (src/routes/docs-page.ts): the page and the two Swagger UI files it
 * loads come from the instances themselves, through HAProxy and from each instance, and each
 * file's bytes are the subresource integrity the page names (a browser refuses others).
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { HAPROXY, INSTANCES } from './helpers/api.js';

describe('/docs without the internet', () => {
  for (const base of [HAPROXY, ...INSTANCES]) {
    it(`serves Swagger UI's files from the instance, as their integrity says (${base})`, async () => {
      const page = await fetch(`${base}/docs`);
      expect(page.status).toBe(200);
      const html = await page.text();
      const files = [...html.matchAll(/(?:src|href)="([^"]+)" integrity="(sha384-[^"]+)"/g)];
      expect(files.map((m) => m[1]).sort()).toEqual([
        '/docs/assets/swagger-ui-dist@5.35.0/swagger-ui-bundle.js',
        '/docs/assets/swagger-ui-dist@5.35.0/swagger-ui.css',
      ]);
      for (const [, url, integrity] of files) {
        const res = await fetch(`${base}${url}`);
        expect(res.status, url).toBe(200);
        expect(res.headers.get('Cache-Control')).toContain('immutable');
        const digest = createHash('sha384')
          .update(new Uint8Array(await res.arrayBuffer()))
          .digest('base64');
        expect(`sha384-${digest}`, url).toBe(integrity);
      }
    });
  }
});
