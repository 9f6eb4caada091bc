import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { oneShardConfig } from '../testing/one-shard-config.js';
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from './cors.js';

function setup(allowed?: string) {
  const config = oneShardConfig(allowed === undefined ? {} : { 'cors/allowed_origins': allowed });
  const app = createApp(createMemoryServices({ config }));
  const cors = (res: Response) =>
    Object.fromEntries(
      [...res.headers].filter(([name]) => name.startsWith('access-control-') || name === 'vary'),
    );
  return { app, config, cors };
}

const preflightTo = (origin: string, path: string, method: string) =>
  new Request(`http://localhost${path}`, {
    method: 'OPTIONS',
    headers: {
      Origin: origin,
      'Access-Control-Request-Method': method,
      'Access-Control-Request-Headers': 'authorization, content-type, x-tenant-id',
    },
  });
const preflight = (origin: string, path = '/v1/books') => preflightTo(origin, path, 'POST');

describe('CORS from cors/allowed_origins', () => {
  it('without the key no answer carries a CORS header, a preflight included', async () => {
    const { app, cors } = setup();
    const res = await app.request(preflight('https://app.example.com'));
    expect(res.status).toBe(204);
    expect(res.headers.get('Allow')).toBe('GET, HEAD, OPTIONS, POST');
    expect(cors(res)).toEqual({});
    const get = await app.request('/v1/books', {
      headers: { Origin: 'https://app.example.com', 'X-Tenant-ID': 'acme' },
    });
    expect(cors(get)).toEqual({});
  });

  it("answers a listed origin's preflight before the tenant is looked at, with the path's methods", async () => {
    const { app, cors } = setup('https://app.example.com, http://localhost:5173');
    const res = await app.request(
      preflight('http://localhost:5173', '/v1/loans/01ARZ3NDEKTSV4RRFFQ69G5FAV/return'),
    );
    expect(res.status).toBe(204);
    expect(res.headers.get('Allow')).toBe('OPTIONS, POST');
    expect(cors(res)).toEqual({
      'access-control-allow-origin': 'http://localhost:5173',
      'access-control-allow-methods': 'OPTIONS, POST',
      'access-control-allow-headers': CORS_ALLOW_HEADERS,
      'access-control-expose-headers': CORS_EXPOSE_HEADERS,
      'access-control-max-age': '600',
      vary: 'Origin',
    });
    expect(res.headers.get('Cache-Control')).toBe('no-store');
    expect(await res.text()).toBe('');
  });

  it('gives a listed origin its answers readable, errors included; another origin none', async () => {
    const { app, cors } = setup('https://app.example.com');
    const ok = await app.request('/v1/books', {
      headers: { Origin: 'https://app.example.com', 'X-Tenant-ID': 'acme' },
    });
    expect(ok.status).toBe(200);
    expect(cors(ok)).toEqual({
      'access-control-allow-origin': 'https://app.example.com',
      'access-control-expose-headers': CORS_EXPOSE_HEADERS,
      vary: 'Origin',
    });
    // a 401 problem+json of a write without a member token
    const refused = await app.request('/v1/books', {
      method: 'POST',
      headers: {
        Origin: 'https://app.example.com',
        'X-Tenant-ID': 'acme',
        'Content-Type': 'application/json',
      },
      body: '{"title":"t","author":"a","copies":1}',
    });
    expect(refused.status).toBe(401);
    expect(refused.headers.get('Content-Type')).toBe('application/problem+json');
    expect(refused.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example.com');
    const other = await app.request('/v1/books', {
      headers: { Origin: 'https://evil.example', 'X-Tenant-ID': 'acme' },
    });
    expect(other.status).toBe(200);
    expect(cors(other)).toEqual({ vary: 'Origin' });
    const otherPreflight = await app.request(preflight('https://evil.example'));
    expect([otherPreflight.status, otherPreflight.headers.get('Allow')]).toEqual([
      204,
      'GET, HEAD, OPTIONS, POST',
    ]);
    expect(cors(otherPreflight)).toEqual({ vary: 'Origin' });
    // a listed origin's preflight of an unknown path: the usual 404, readable
    const unknown = await app.request(preflight('https://app.example.com', '/v1/nothing'));
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('Access-Control-Allow-Methods')).toBeNull();
    // a plain OPTIONS (no Access-Control-Request-Method) stays the 204 with Allow
    const plain = await app.request('/v1/books', {
      method: 'OPTIONS',
      headers: { Origin: 'https://app.example.com' },
    });
    expect([plain.status, plain.headers.get('Allow')]).toEqual([204, 'GET, HEAD, OPTIONS, POST']);
    expect(plain.headers.get('Access-Control-Allow-Methods')).toBeNull();
  });

  it('"*" allows every origin, with an Origin or without, and no Vary', async () => {
    const { app, cors } = setup('*');
    const star = { 'access-control-allow-origin': '*', 'access-control-expose-headers': CORS_EXPOSE_HEADERS };
    const res = await app.request('/v1/books', {
      headers: { Origin: 'https://any.example', 'X-Tenant-ID': 'acme' },
    });
    expect(cors(res)).toEqual(star);
    const without = await app.request('/v1/books', { headers: { 'X-Tenant-ID': 'acme' } });
    expect(cors(without)).toEqual(star);
  });

  it('never on the health, metrics and docs paths: no web page can read them, "*" or not', async () => {
    for (const allowed of ['*', 'https://app.example.com']) {
      const { app, cors } = setup(allowed);
      for (const path of ['/health', '/health/config', '/metrics', '/openapi.json']) {
        const res = await app.request(path, { headers: { Origin: 'https://app.example.com' } });
        expect([path, res.status, cors(res)]).toEqual([path, 200, {}]);
      }
      const preflight = await app.request(preflightTo('https://app.example.com', '/health/config', 'GET'));
      expect(cors(preflight)).toEqual({});
    }
  });

  it('a change of the key applies to the next request; an invalid value keeps the last good one', async () => {
    const { app, config, cors } = setup('*');
    const read = () =>
      app.request('/v1/books', { headers: { Origin: 'https://any.example', 'X-Tenant-ID': 'acme' } });
    expect((await read()).headers.get('Access-Control-Allow-Origin')).toBe('*');
    config.put('cors/allowed_origins', 'https://app.example.com');
    expect(cors(await read())).toEqual({ vary: 'Origin' });
    config.put('cors/allowed_origins', 'https://app.example.com/');
    expect(config.status().rejected.map((r) => r.key)).toEqual(['cors/allowed_origins']);
    const kept = await app.request('/v1/books', {
      headers: { Origin: 'https://app.example.com', 'X-Tenant-ID': 'acme' },
    });
    expect(kept.headers.get('Access-Control-Allow-Origin')).toBe('https://app.example.com');
    config.delete('cors/allowed_origins');
    const none = await app.request('/v1/books', {
      headers: { Origin: 'https://app.example.com', 'X-Tenant-ID': 'acme' },
    });
    expect(cors(none)).toEqual({});
  });
});

describe('a write from a page on an origin not allowed', () => {
  const register = (app: ReturnType<typeof setup>['app'], email: string, origin?: string) =>
    app.request('/v1/members', {
      method: 'POST',
      headers: {
        'X-Tenant-ID': 'acme',
        'Content-Type': 'application/json',
        ...(origin === undefined ? {} : { Origin: origin }),
      },
      body: JSON.stringify({ email, name: 'Ann', password: 'correct horse battery' }),
    });

  it('is refused 403 before anything is written, the key empty or listing others', async () => {
    for (const allowed of [undefined, 'https://app.example.com']) {
      const { app } = setup(allowed);
      const refused = await register(app, 'ann@example.com', 'https://evil.example');
      expect(refused.status).toBe(403);
      expect(refused.headers.get('Content-Type')).toBe('application/problem+json');
      const body = (await refused.json()) as { code: string; detail: string };
      expect(body).toMatchObject({
        code: 'origin_not_allowed',
        detail: 'a write from a page on https://evil.example: that origin is not in cors/allowed_origins',
      });
      expect(refused.headers.get('X-Shard')).toBe('shard-1');
      // nothing was written: the same address registers afterwards
      expect((await register(app, 'ann@example.com')).status).toBe(201);
    }
  });

  it('passes from a listed origin, from "*", from the API\'s own host, without an Origin, and for reads', async () => {
    expect(
      (await register(setup('https://app.example.com').app, 'a@example.com', 'https://app.example.com'))
        .status,
    ).toBe(201);
    expect((await register(setup('*').app, 'b@example.com', 'https://any.example')).status).toBe(201);
    // app.request's URL is http://localhost/…: a page of /docs on the same host
    expect((await register(setup().app, 'c@example.com', 'http://localhost')).status).toBe(201);
    expect((await register(setup().app, 'd@example.com')).status).toBe(201);
    const read = await setup().app.request('/v1/books', {
      headers: { 'X-Tenant-ID': 'acme', Origin: 'https://evil.example' },
    });
    expect(read.status).toBe(200);
    // a path no route serves keeps its 404; "null" (a sandboxed page) is no origin allowed
    const { app } = setup();
    const unknown = await app.request('/v1/nothing', {
      method: 'POST',
      headers: { 'X-Tenant-ID': 'acme', Origin: 'https://evil.example' },
    });
    expect(unknown.status).toBe(404);
    expect((await register(app, 'e@example.com', 'null')).status).toBe(403);
  });
});
