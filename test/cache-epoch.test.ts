/**
 * Writes whose cache invalidation cannot reach Redis (src/cache/cache-epoch.ts), against the real
 * stack: Redis is SIGSTOPped while api-1 changes books that api-2 has cached, then continued.
 *
 * Before: api-1 kept the version raises in memory and sent them when its breaker let it, up to a
 * reset timeout after Redis came back. api-2, which had not needed Redis meanwhile, went on
 * serving the old entries at once: old titles 93 ms and 1.2 s after SIGCONT, fixed after 2.4 s. If
 * api-1 died before sending its raises (SIGKILL), readers without a consistency token got the old
 * entries until they expired (`cache/ttl_seconds`, 37–41 s seen).
 * Now the write moves the cache epoch in etcd before it answers; every instance then treats the
 * entries cached before as absent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CACHE_EPOCH_KEY } from '../src/config/schema.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdGet, etcdOverride } from './helpers/etcd.js';
import { breakerSettingsInForce } from './helpers/live-config.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stackCli, stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('epoch');
const [one, two] = INSTANCES as [string, string];
const restores: (() => void)[] = [];
let token = '';

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  token = (await registerAndLogin(tenant, 'librarian@example.com')).token;
  // a frozen Redis costs a call this much before it counts as failed, and one failure opens the
  // breaker: the raises of the writes below are then refused without being sent. (A command sent
  // to a frozen Redis sits in its socket and still runs at SIGCONT, invalidating on time.)
  restores.push(etcdOverride('breakers/redis/call_timeout_ms', '300'));
  restores.push(etcdOverride('breakers/redis/failure_threshold', '1'));
  restores.push(etcdOverride('breakers/redis/reset_timeout_ms', '5000'));
  await breakerSettingsInForce('redis', {
    call_timeout_ms: 300,
    failure_threshold: 1,
    reset_timeout_ms: 5000,
  });
});
afterAll(() => {
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
});

/** books created on api-1 and cached (HIT) on api-2 */
async function booksCachedOnTwo(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await api('POST', '/v1/books', {
      tenant,
      token,
      base: one,
      body: { isbn: '9780262033848', title: `Old ${i}`, author: 'Cormen', copies: 1 },
    });
    expect(r.status).toBe(201);
    ids.push(r.json.id as string);
  }
  for (const id of ids)
    await waitFor(
      async () =>
        (await api('GET', `/v1/books/${id}`, { tenant, base: two })).headers.get('X-Cache') === 'HIT',
      { timeoutMs: 3000, what: `book ${id} cached on api-2` },
    );
  return ids;
}

/** PATCHes every title on api-1 while Redis is frozen; `whileFrozen` runs before SIGCONT */
async function renameWhileRedisFrozen(ids: string[], whileFrozen: () => void = () => {}): Promise<void> {
  const redis = stackPid(topology.redis.name)!;
  const epochBefore = etcdGet(CACHE_EPOCH_KEY);
  process.kill(redis, 'SIGSTOP');
  try {
    // a read on api-1 times out and opens its breaker
    expect((await api('GET', `/v1/books/${ids[0]}`, { tenant, base: one })).headers.get('X-Cache')).toBe(
      'BYPASS',
    );
    for (const id of ids) {
      const r = await api('PATCH', `/v1/books/${id}`, {
        tenant,
        token,
        base: one,
        body: { title: `New ${id}` },
      });
      expect(r.status).toBe(200);
    }
    expect(etcdGet(CACHE_EPOCH_KEY)).not.toBe(epochBefore);
    whileFrozen();
  } finally {
    process.kill(redis, 'SIGCONT');
  }
}

/** reads every book on api-2 without a token for `ms`; the titles seen that are not the new one */
async function oldTitlesSeenOnTwo(ids: string[], ms: number): Promise<string[]> {
  const old: string[] = [];
  const until = Date.now() + ms;
  while (Date.now() < until) {
    for (const id of ids) {
      const r = await api('GET', `/v1/books/${id}`, { tenant, base: two });
      expect(r.status).toBe(200);
      if (r.json.title !== `New ${id}`) old.push(`${r.json.title} (${r.headers.get('X-Cache')})`);
    }
  }
  return old;
}

describe('cache epoch: invalidations that cannot reach Redis', () => {
  it('another instance serves no entry the writes retired, from the moment Redis is back', async () => {
    const ids = await booksCachedOnTwo(5);
    await renameWhileRedisFrozen(ids);
    expect(await oldTitlesSeenOnTwo(ids, 3000)).toEqual([]);
    // and the cache works again: the new titles are cached
    await waitFor(
      async () =>
        (await api('GET', `/v1/books/${ids[0]}`, { tenant, base: two })).headers.get('X-Cache') === 'HIT',
      // nothing is cached for replication/max_lag_seconds (5) + 2 s after the move
      { timeoutMs: 15_000, intervalMs: 200, what: 'hits on api-2 again' },
    );
  });

  it('nor an entry refilled from a replica that had not applied the write, once that replica caught up', async () => {
    // a write whose invalidation died with its writer has no floor on the refill: before, api-2
    // refilled from the replica (its SQL thread stopped) under the new epoch and served that old
    // title from the cache for all 20 s watched, long after the replica had caught up
    const ids = await booksCachedOnTwo(2);
    const replica = node('shard-1', 'replica').port;
    await rootQuery(replica, 'STOP SLAVE SQL_THREAD');
    try {
      await renameWhileRedisFrozen(ids, () => process.kill(stackPid(topology.apis[0]!.id)!, 'SIGKILL'));
      // token-less reads on api-2 meanwhile (from that replica: the staleness a replica may have)
      await oldTitlesSeenOnTwo(ids, 1500);
    } finally {
      await rootQuery(replica, 'START SLAVE SQL_THREAD');
    }
    try {
      await waitFor(
        async () =>
          (
            await rootQuery<{ title: string }>(
              replica,
              'SELECT title FROM shardgate.books WHERE tenant_id = ? AND id = ?',
              [tenant, ids[0]],
            )
          )[0]?.title === `New ${ids[0]}`,
        {
          timeoutMs: 10_000,
          what: 'the replica to apply the writes',
        },
      );
      expect(await oldTitlesSeenOnTwo(ids, 3000)).toEqual([]);
    } finally {
      stackCli(['up']);
    }
  });

  it('nor when the writer was SIGKILLed before it could send its invalidations', async () => {
    const ids = await booksCachedOnTwo(3);
    try {
      await renameWhileRedisFrozen(ids, () => process.kill(stackPid(topology.apis[0]!.id)!, 'SIGKILL'));
      expect(await oldTitlesSeenOnTwo(ids, 2000)).toEqual([]);
    } finally {
      stackCli(['up']);
    }
  });
});
