import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { outOfResources } from './health.js';

function build({ loaded = true, draining = false } = {}) {
  const config = new MemoryConfigStore({ loaded });
  const app = createApp(createMemoryServices({ config, draining: () => draining }));
  return { app, config };
}

describe('health routes', () => {
  it('answers liveness with X-Served-By and a request id', async () => {
    const res = await build().app.request('/health');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
    expect(res.headers.get('X-Served-By')).toBe('api-test');
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    expect(res.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('keeps a plain caller request id and replaces a hostile one', async () => {
    const { app } = build();
    expect(
      (await app.request('/health', { headers: { 'X-Request-Id': 'abc-123' } })).headers.get('X-Request-Id'),
    ).toBe('abc-123');
    const res = await app.request('/health', { headers: { 'X-Request-Id': 'x'.repeat(300) } });
    expect(res.headers.get('X-Request-Id')).not.toBe('x'.repeat(300));
  });

  it('is not ready before config is loaded, nor while draining: a problem, as every error (CONTRACT.md §6)', async () => {
    const notLoaded = await build({ loaded: false }).app.request('/health/ready');
    expect([
      notLoaded.status,
      notLoaded.headers.get('Content-Type'),
      notLoaded.headers.get('Retry-After'),
    ]).toEqual([503, 'application/problem+json', '1']);
    expect(await notLoaded.json()).toMatchObject({
      status: 503,
      code: 'config_not_loaded',
      requestId: expect.any(String),
    });
    const draining = await build({ draining: true }).app.request('/health/ready');
    expect([
      draining.status,
      draining.headers.get('Content-Type'),
      draining.headers.get('Retry-After'),
    ]).toEqual([503, 'application/problem+json', null]);
    expect(await draining.json()).toMatchObject({ status: 503, code: 'draining' });
    const ready = await build().app.request('/health/ready');
    expect([ready.status, await ready.json()]).toEqual([200, { status: 'ready' }]);
  });

  it('lists rejected keys at /health/config while the last good value stays', async () => {
    const { app, config } = build();
    config.put('breakers/redis/failure_threshold', '7');
    config.put('breakers/redis/failure_threshold', 'banana');
    const body = (await (await app.request('/health/config')).json()) as {
      rejected: { key: string }[];
      applied: { breakers: { redis: { failure_threshold: number } } };
    };
    expect(body.rejected.map((r) => r.key)).toEqual(['breakers/redis/failure_threshold']);
    expect(body.applied.breakers.redis.failure_threshold).toBe(7);
  });

  it('answers unknown routes with problem+json', async () => {
    const res = await build().app.request('/nope');
    expect(res.status).toBe(404);
    expect(res.headers.get('Content-Type')).toBe('application/problem+json');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 404, code: 'not_found', title: 'Not found' });
    expect(body.requestId).toBe(res.headers.get('X-Request-Id'));
  });

  it('quotes an unknown path clipped and with its control and bidi characters escaped', async () => {
    // an outside check: a 7,000-character path came back whole (7,187 bytes), U+202E and CR LF raw
    const res = await build().app.request(`/v1/%E2%80%AEabc%0d%0aX:y${'p'.repeat(7000)}`);
    const { detail } = (await res.json()) as { detail: string };
    expect(detail).toBe(`no route for GET /v1/\\u{202E}abc\\u{D}\\u{A}X:y${'p'.repeat(107)}…`);
  });

  it('serves the OpenAPI document', async () => {
    const res = await build().app.request('/openapi.json');
    expect(res.status).toBe(200);
    expect(((await res.json()) as { openapi: string }).openapi).toBe('3.1.0');
  });
});

describe('readiness while out of file descriptors', () => {
  it('is not ready for 5 s after a call failed with EMFILE, naming it and the soft limit', async () => {
    const config = new MemoryConfigStore({ loaded: true });
    const services = createMemoryServices({ config });
    const app = createApp(services);
    expect((await app.request('/health/ready')).status).toBe(200);
    services.breakers.shortage.note('EMFILE', 'mysql-master:shard-1');
    const res = await app.request('/health/ready');
    expect([res.status, res.headers.get('Content-Type'), res.headers.get('Retry-After')]).toEqual([
      503,
      'application/problem+json',
      '5',
    ]);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('instance_out_of_resources');
    expect(body.detail).toMatch(/^this instance ran out of file descriptors .*\(EMFILE\)/);
    expect(outOfResources({ code: 'EMFILE', agoMs: 1234, softLimit: 64 }).detail).toContain(
      '(soft limit on open files: 64) 1.2 s ago',
    );
  });
});
