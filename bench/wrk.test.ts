/**
 * The wrk adapter: its summary line read into a LoadResult, and a real `wrk` (Debian package)
 * against a local node:http server whose answers alternate between 200 and 503.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseWrk, wrk } from './wrk.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

describe('parseWrk', () => {
  it('reads requests, errors and the latency percentiles (µs → ms) of the hook line', () => {
    const out = [
      'Running 2s test @ http://127.0.0.1:8080/health',
      'SHARDGATE-WRK 20000 2000000 10 1 2 3 4 1500 4000 9000 25000',
    ].join('\n');
    const r = parseWrk(out, 42);
    expect(r).toMatchObject({
      seconds: 2,
      requests: 20000,
      rps: 10000,
      p50: 1.5,
      p95: 4,
      p99: 9,
      max: 25,
      non2xx: 10,
      socketErrors: 10,
      errors: 20,
      statusCodes: { '2xx/3xx': 19990, 'not 2xx/3xx': 10 },
      generatorCpuPercent: 42,
    });
  });

  it('refuses output without the hook line', () => {
    expect(() => parseWrk('unable to connect to 127.0.0.1:1 Connection refused')).toThrow('no summary line');
  });
});

describe('wrk', () => {
  it('runs a closed loop with the request headers and counts non-2xx answers', async () => {
    let n = 0;
    const tenants = new Set<string>();
    server = createServer((req, res) => {
      tenants.add(String(req.headers['x-tenant-id']));
      res.statusCode = n++ % 2 === 0 ? 200 : 503;
      res.end('{}');
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await wrk(
      base,
      { path: '/x', headers: { 'X-Tenant-ID': 't1' } },
      { connections: 4, seconds: 1 },
    );
    expect(r.requests).toBeGreaterThan(100);
    expect(r.non2xx).toBeGreaterThan(r.requests * 0.4);
    expect(r.non2xx).toBeLessThan(r.requests * 0.6);
    expect(r.p50).toBeGreaterThan(0);
    expect(r.p99).toBeGreaterThanOrEqual(r.p50);
    expect(r.generatorCpuPercent).toBeGreaterThan(0);
    expect([...tenants]).toEqual(['t1']);
  });

  it('refuses a request wrk cannot send as given', async () => {
    await expect(wrk('http://127.0.0.1:1', { method: 'POST', path: '/', body: '{}' })).rejects.toThrow(
      'GET requests without a body only',
    );
  });
});
