import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { oneShardConfig } from '../testing/one-shard-config.js';
import { hostRefusal } from './host-check.js';

function setup(allowed?: string) {
  const config = oneShardConfig(allowed === undefined ? {} : { 'http/allowed_hosts': allowed });
  const app = createApp(createMemoryServices({ config }));
  const get = (path: string, host?: string, extra: Record<string, string> = {}) =>
    app.request(path, { headers: { ...(host === undefined ? {} : { Host: host }), ...extra } });
  return { app, config, get };
}

describe('http/allowed_hosts: a Host not listed gets 421 (DNS rebinding)', () => {
  it('without the key, or with "*", every host is answered', async () => {
    for (const allowed of [undefined, '*']) {
      const { get } = setup(allowed);
      expect((await get('/health/config', 'rebound.attacker.example:8080')).status).toBe(200);
    }
  });

  it('refuses an unlisted host on every path, before CORS and the tenant, as problem+json naming host and key', async () => {
    const { app, get } = setup('api.example.com');
    const res = await get('/health/config', 'rebound.attacker.example:8080');
    expect(res.status).toBe(421);
    expect(res.headers.get('Content-Type')).toBe('application/problem+json');
    expect(res.headers.get('X-Request-Id')).toBeTruthy();
    expect(res.headers.get('X-Content-Type-Options')).toBe('nosniff');
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('host_not_allowed');
    expect(body.detail).toBe(
      'this API does not answer to the host "rebound.attacker.example": it is not in http/allowed_hosts',
    );
    // an anonymous write from the rebound page (Origin = Host): nothing reaches the handler
    const write = await app.request('/v1/members', {
      method: 'POST',
      headers: {
        Host: 'rebound.attacker.example:8080',
        Origin: 'http://rebound.attacker.example:8080',
        'X-Tenant-ID': 'acme',
        'Content-Type': 'application/json',
      },
      body: JSON.stringify({ email: 'a@b.example', name: 'A', password: 'correct horse battery' }),
    });
    expect(write.status).toBe(421);
    // a preflight from that page too
    const preflight = await app.request('/v1/books', {
      method: 'OPTIONS',
      headers: {
        Host: 'rebound.attacker.example',
        Origin: 'http://x.example',
        'Access-Control-Request-Method': 'POST',
      },
    });
    expect(preflight.status).toBe(421);
    expect((await get('/metrics', 'rebound.attacker.example')).status).toBe(421);
    expect((await get('/v1/books', 'rebound.attacker.example', { 'X-Tenant-ID': 'acme' })).status).toBe(421);
  });

  it('answers listed names (any case, a final dot, any port), names under a *. entry, addresses, localhost and no Host', async () => {
    const { get } = setup('api.example.com, *.library.example.org');
    for (const host of [
      'api.example.com',
      'API.Example.com.:8080',
      'eu.library.example.org',
      'a.b.library.example.org:443',
      '127.0.0.1:8080',
      '10.1.2.3',
      '[::1]:8101',
      '[fe80::1]',
      'localhost:8080',
      'LOCALHOST',
      '',
      undefined,
    ]) {
      expect((await get('/health/config', host)).status, String(host)).toBe(200);
    }
    for (const host of [
      'library.example.org',
      'evillibrary.example.org',
      'api.example.com.attacker.example',
      'attacker.example:80',
      'localhost.attacker.example',
      '127.0.0.1.nip.io',
    ]) {
      expect((await get('/health/config', host)).status, host).toBe(421);
    }
  });

  it('follows the key live: a new list applies to the next request, a refused value keeps the last good one', async () => {
    const { config, get } = setup('api.example.com');
    expect((await get('/health/config', 'new.example.com')).status).toBe(421);
    config.put('http/allowed_hosts', 'api.example.com new.example.com');
    expect((await get('/health/config', 'new.example.com')).status).toBe(200);
    config.put('http/allowed_hosts', 'new.example.com:8080');
    expect((await get('/health/config', 'new.example.com')).status).toBe(200);
    expect((await get('/health/config', 'other.example.com')).status).toBe(421);
    config.delete('http/allowed_hosts');
    expect((await get('/health/config', 'other.example.com')).status).toBe(200);
  });

  it("judges an absolute-form target's authority as the Host it replaces, and two Host headers as none listed", () => {
    const allowed = ['api.example.com'];
    expect(hostRefusal('api.example.com', allowed, 'http://api.example.com/health/config')).toBeUndefined();
    expect(hostRefusal('api.example.com', allowed, 'http://rebound.example/health/config')?.status).toBe(421);
    expect(hostRefusal('api.example.com', allowed, '/health/config')).toBeUndefined();
    // as @hono/node-server joins them: "[::1]" first made it look like an address
    expect(hostRefusal('[::1], rebound.example', allowed)?.status).toBe(421);
    expect(hostRefusal('api.example.com, api.example.com', allowed)?.status).toBe(421);
    // under a wildcard too: the joined value ends like a listed name (a review)
    expect(hostRefusal('rebound.attacker.test, worker.example.com', ['*.example.com'])?.status).toBe(421);
    expect(hostRefusal(undefined, allowed)).toBeUndefined();
  });
});
