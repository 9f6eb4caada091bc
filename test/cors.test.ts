/**
 * CORS from `cors/allowed_origins`, live from etcd, through the stack's HAProxy: a browser on a
 * listed site gets its preflight answered and can read a write's answer and its consistency
 * token; another site gets no CORS header; an invalid value is rejected while the last good one
 * stays in force; the key's delete ends it. (The tenant-affinity HAProxy passing a preflight,
 * which carries no X-Tenant-ID, is in lb-tenant-affinity.test.ts.)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, HAPROXY, INSTANCES, registerAndLogin } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const KEY = 'cors/allowed_origins';
const SITE = 'https://library.example.org';
const tenant = uniqueTenantId('cors');
let before: string | undefined;

const origins = (list: string[]) =>
  configInForce(
    (a) => JSON.stringify((a.cors as { allowedOrigins: string[] }).allowedOrigins) === JSON.stringify(list),
    `${KEY} ${JSON.stringify(list)}`,
  );

beforeAll(async () => {
  before = etcdGet(KEY);
  await createTenant(tenant, 'shard-2');
});

afterAll(async () => {
  if (before === undefined) etcdDel(KEY);
  else etcdPut(KEY, before);
  removeTenant(tenant);
});

describe('CORS from cors/allowed_origins', () => {
  it('a listed site gets its preflight through HAProxy and reads a write and its token; another site gets no CORS header', async () => {
    etcdPut(KEY, `${SITE}, http://localhost:5173`);
    await origins([SITE, 'http://localhost:5173']);
    const preflight = await fetch(`${HAPROXY}/v1/books`, {
      method: 'OPTIONS',
      headers: {
        Origin: SITE,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization, content-type, x-tenant-id, idempotency-key',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('Access-Control-Allow-Origin')).toBe(SITE);
    expect(preflight.headers.get('Access-Control-Allow-Methods')).toBe('GET, HEAD, OPTIONS, POST');
    const allowHeaders = (preflight.headers.get('Access-Control-Allow-Headers') ?? '')
      .toLowerCase()
      .split(', ');
    for (const h of ['authorization', 'content-type', 'x-tenant-id', 'idempotency-key'])
      expect(allowHeaders).toContain(h);

    const { token } = await registerAndLogin(tenant, `librarian-${Date.now()}@example.org`);
    const created = await api('POST', '/v1/books', {
      tenant,
      token,
      headers: { Origin: SITE },
      body: { isbn: '9780306406157', title: 'Cross-site', author: 'A. Browser', copies: 1 },
    });
    expect(created.status).toBe(201);
    expect(created.headers.get('Access-Control-Allow-Origin')).toBe(SITE);
    const exposed = (created.headers.get('Access-Control-Expose-Headers') ?? '').split(', ');
    expect(exposed).toContain('X-Consistency-Token');
    expect(created.headers.get('X-Consistency-Token')).toBeTruthy();
    expect(exposed).toContain('Location');
    expect(created.headers.get('Location')).toBe(`/v1/books/${created.json.id}`);
    expect(created.headers.get('Vary')).toBe('Origin');

    // an error is readable too: the problem+json of a read without the tenant
    const refused = await api('GET', '/v1/books', { headers: { Origin: SITE } });
    expect([refused.status, refused.headers.get('Access-Control-Allow-Origin')]).toEqual([400, SITE]);

    const other = await api('GET', `/v1/books/${created.json.id}`, {
      tenant,
      headers: { Origin: 'https://elsewhere.example' },
    });
    expect(other.status).toBe(200);
    expect(other.headers.get('Access-Control-Allow-Origin')).toBeNull();
    expect(other.headers.get('Access-Control-Expose-Headers')).toBeNull();

    // a write from another site (as a browser sends it on the strength of a preflight it cached
    // before that origin was taken off the list) is refused, and writes nothing
    const email = `cross-site-${Date.now()}@example.org`;
    const member = { email, name: 'Cross Site', password: 'correct horse battery' };
    const crossSite = await api('POST', '/v1/members', {
      tenant,
      headers: { Origin: 'https://elsewhere.example' },
      body: member,
    });
    expect([crossSite.status, crossSite.json.code]).toEqual([403, 'origin_not_allowed']);
    expect((await api('POST', '/v1/members', { tenant, body: member })).status).toBe(201);
  });

  it('an invalid value is rejected on every instance, naming the spelling that would match, and the last good one stays', async () => {
    etcdPut(KEY, SITE);
    await origins([SITE]);
    etcdPut(KEY, `${SITE}/`);
    for (const base of INSTANCES)
      await waitFor(
        async () => {
          const body = (await (await fetch(`${base}/health/config`)).json()) as {
            rejected: { key: string; reason: string }[];
          };
          return body.rejected.some(
            (r) =>
              r.key === KEY &&
              r.reason.startsWith(`"${SITE}/" is not written as a browser sends it: write "${SITE}"`),
          );
        },
        { timeoutMs: 2000, intervalMs: 20, what: `${KEY} rejected on ${base}` },
      );
    for (const base of INSTANCES) {
      const res = await fetch(`${base}/v1/books`, { headers: { Origin: SITE, 'X-Tenant-ID': tenant } });
      expect([res.status, res.headers.get('Access-Control-Allow-Origin')]).toEqual([200, SITE]);
    }
    // `config apply` refuses such a value before it writes anything, naming the key and the fix
    const dir = mkdtempSync(join(tmpdir(), 'sg-cors-'));
    const file = join(dir, 'config.yaml');
    expect(ctl(['config', 'export', '-o', file]).code).toBe(0);
    const exported = readFileSync(file, 'utf8');
    expect(exported).toContain(`allowed_origins: ${SITE}/`);
    writeFileSync(
      file,
      exported.replace(`allowed_origins: ${SITE}/`, 'allowed_origins: [HTTPS://Library.Example.org]'),
    );
    const applied = ctl(['config', 'apply', '-f', file, '--force']);
    expect(applied.code).toBe(1);
    expect(applied.stderr).toContain(
      `invalid /shardgate/${KEY}: "HTTPS://Library.Example.org" is not written as a browser sends it: write "${SITE}"; nothing written`,
    );
    expect(etcdGet(KEY)).toBe(`${SITE}/`);
    rmSync(dir, { recursive: true });
  });

  it('"*" lets every site read the library API but not the health or metrics paths; the key\'s delete ends CORS', async () => {
    etcdPut(KEY, '*');
    await origins(['*']);
    const books = () =>
      fetch(`${HAPROXY}/v1/books`, { headers: { Origin: 'https://any.example', 'X-Tenant-ID': tenant } });
    const res = await books();
    expect([res.status, res.headers.get('Access-Control-Allow-Origin'), res.headers.get('Vary')]).toEqual([
      200,
      '*',
      null,
    ]);
    for (const path of ['/health/config', '/metrics']) {
      const ops = await fetch(`${HAPROXY}${path}`, { headers: { Origin: 'https://any.example' } });
      expect([path, ops.status, ops.headers.get('Access-Control-Allow-Origin')]).toEqual([path, 200, null]);
    }
    etcdDel(KEY);
    await origins([]);
    expect((await books()).headers.get('Access-Control-Allow-Origin')).toBeNull();
  });
});
