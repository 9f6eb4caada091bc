import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { createMemoryServices } from '../testing/memory-services.js';

const SHARD = JSON.stringify({
  master: { host: '127.0.0.1', port: 3316 },
  replicas: [],
  database: 'shardgate',
});

describe('a /v1 request before the instance has read its config', () => {
  it('is a 503 config_not_loaded with Retry-After, not a 404 tenant_not_found; after the load the tenant is served', async () => {
    const config = new MemoryConfigStore({ loaded: false });
    const app = createApp(createMemoryServices({ config }));
    const get = (path: string, tenant = 'acme') => app.request(path, { headers: { 'X-Tenant-ID': tenant } });
    // an outside check: a restarted instance said "tenant does not exist" for its first ~40 ms
    for (const path of ['/v1/books', '/v1/books/01M91XGPR7VCQ2JDPMHX1SHFB2']) {
      const early = await get(path);
      expect(early.status, path).toBe(503);
      expect(early.headers.get('Content-Type')).toContain('application/problem+json');
      expect(early.headers.get('Retry-After')).toBe('1');
      expect(await early.json()).toMatchObject({ code: 'config_not_loaded' });
    }
    const registration = await app.request('/v1/members', {
      method: 'POST',
      headers: { 'X-Tenant-ID': 'acme', 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'ann@example.com', name: 'Ann', password: 'correct horse' }),
    });
    expect(registration.status).toBe(503);
    // what needs no config stays as it was: a malformed header is 400, an unknown route 404
    expect((await get('/v1/books', 'Not A Tenant')).status).toBe(400);
    expect((await get('/v1/nothing-here')).status).toBe(404);

    config.load({ 'shards/shard-1': SHARD, 'tenants/acme': '{"shard":"shard-1","status":"active"}' });
    expect((await get('/v1/books')).status).toBe(200);
    // once loaded, an unknown tenant is unknown
    const unknown = await get('/v1/books', 'nobody');
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toMatchObject({ code: 'tenant_not_found' });
  });
});
