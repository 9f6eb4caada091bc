/**
 * A write of unknown outcome (503 `write_outcome_unknown`) retires its own tenant's cache entries
 * on every instance before it answers, and no other tenant's (src/cache/read-cache.ts
 * afterUncertainWrite, tenant-epoch-retirers.ts), against the real stack: shard-1's master is
 * SIGSTOPped while one tenant's write runs, so the write's kill cannot be confirmed.
 *
 * Before: such a write moved the global cache epoch, and every tenant lost its cached entries
 * (an outside check: another tenant's hit rate fell from 65 % to 24–27 % while one tenant's
 * writes kept timing out on its own row locks).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_EPOCH_KEY, tenantCacheEpochKey } from '../src/config/schema.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdGet, etcdOverride } from './helpers/etcd.js';
import { breakerSettingsInForce, cacheEnabledInForce } from './helpers/live-config.js';
import { stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = topology.shards[0]!;
const [one, two] = INSTANCES as [string, string];
const restores: (() => void)[] = [];
const tenants = [uniqueTenantId('uw-a'), uniqueTenantId('uw-b')] as const;
const tokens: string[] = [];
const books: string[] = [];

beforeAll(async () => {
  restores.push(etcdOverride('cache/enabled', 'true'));
  await cacheEnabledInForce(true);
  // a write to the stopped master gives up after 800 ms; one failure does not open the breaker
  const settings = { call_timeout_ms: 800, failure_threshold: 3, reset_timeout_ms: 1000 };
  for (const [setting, value] of Object.entries(settings))
    restores.push(etcdOverride(`breakers/mysql-master/${setting}`, String(value)));
  await breakerSettingsInForce('mysql-master', settings);
  for (const tenant of tenants) {
    await createTenant(tenant, shard.id);
    const token = (await registerAndLogin(tenant, 'lib@example.com')).token;
    const r = await api('POST', '/v1/books', {
      tenant,
      token,
      base: one,
      body: { isbn: '9780262033848', title: 'Before', author: 'Cormen', copies: 1 },
    });
    expect(r.status).toBe(201);
    tokens.push(token);
    books.push(r.json.id as string);
  }
});

afterAll(() => {
  for (const r of restores.reverse()) r();
  for (const tenant of tenants) removeTenant(tenant);
});

const cacheOf = async (i: number, base: string) =>
  (await api('GET', `/v1/books/${books[i]}`, { tenant: tenants[i]!, base })).headers.get('X-Cache');

describe('a write of unknown outcome and the read cache', () => {
  it("retires its tenant's entries on every instance, and leaves another tenant's of the same shard", async () => {
    for (const base of INSTANCES)
      for (const i of [0, 1])
        await waitFor(async () => (await cacheOf(i, base)) === 'HIT', {
          timeoutMs: 5000,
          what: `tenant ${tenants[i]}'s book cached on ${base}`,
        });
    const globalBefore = etcdGet(CACHE_EPOCH_KEY);
    expect(etcdGet(tenantCacheEpochKey(tenants[0]))).toBeUndefined();
    const master = stackPid(shard.master.name)!;
    process.kill(master, 'SIGSTOP');
    let answer: { status: number; code: unknown };
    try {
      const r = await api('PATCH', `/v1/books/${books[0]}`, {
        tenant: tenants[0],
        token: tokens[0],
        base: one,
        body: { title: 'Maybe' },
      });
      answer = { status: r.status, code: r.json.code };
    } finally {
      process.kill(master, 'SIGCONT');
    }
    // a stopped server takes no KILL: the write may still apply
    expect(answer).toEqual({ status: 503, code: 'write_outcome_unknown' });
    expect(etcdGet(tenantCacheEpochKey(tenants[0]))).toMatch(/^\d+$/);
    expect(etcdGet(CACHE_EPOCH_KEY)).toBe(globalBefore);
    // the other instance follows the tenant's epoch through its watch; the other tenant's entry
    // stays on both
    await waitFor(async () => (await cacheOf(0, two)) !== 'HIT', {
      timeoutMs: 2000,
      intervalMs: 20,
      what: `tenant ${tenants[0]}'s entry retired on api-2`,
    });
    expect(await cacheOf(0, one)).not.toBe('HIT');
    for (const base of INSTANCES) expect(await cacheOf(1, base)).toBe('HIT');
    // the master takes writes again (left so for whatever runs next)
    await waitFor(
      async () =>
        (
          await api('PATCH', `/v1/books/${books[1]}`, {
            tenant: tenants[1],
            token: tokens[1],
            base: one,
            body: { title: 'After' },
          })
        ).status === 200,
      { timeoutMs: 20_000, intervalMs: 250, what: 'writes to the master again' },
    );
  });
});
