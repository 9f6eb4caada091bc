/**
 * The in-process near cache (`cache/near_max_entries` > 0) against the real stack: Redis :6380
 * with client-side caching (tracking redirected to a subscriber connection), both API instances.
 * - near hits make no Redis round trip (Redis' own command counters stand still);
 * - a PATCH on one instance, without its token, reaches the other's near cache within the 1 s
 *   bound (30 times; it is normally seen by the very next read);
 * - Redis frozen (SIGSTOP) while a PATCH lands elsewhere: once the heartbeat bound has passed,
 *   the near copy is no longer served; after SIGCONT the near cache comes back;
 * - Redis SIGKILLed and started again: tracking is set up again and the next write is seen;
 * - `cache/near_max_entries 0` switches it off within 2 s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdGet, etcdOverride, etcdPut } from './helpers/etcd.js';
import { breakerSettingsInForce } from './helpers/live-config.js';
import { scrapeMetric } from './helpers/metrics.js';
import { stackCli } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('near');
const [one, two] = INSTANCES as [string, string];
const restores: (() => void)[] = [];
let token = '';
const redis = new Redis(`redis://${topology.host}:${topology.redis.port}`, { lazyConnect: true });

const metric = (base: string, name: string) => scrapeMetric(base, `shardgate_${name}`);

/** calls of the script behind every Redis cache read, from Redis itself */
async function redisReads(): Promise<number> {
  const info = await redis.info('commandstats');
  const line = info.split('\n').find((l) => l.startsWith('cmdstat_evalsha:'));
  return Number(/calls=(\d+)/.exec(line ?? '')?.[1] ?? 0);
}

async function newBook(title: string): Promise<string> {
  const r = await api('POST', '/v1/books', {
    tenant,
    token,
    body: { isbn: '9780262033848', title, author: 'Knuth', copies: 2 },
  });
  expect(r.status).toBe(201);
  return r.json.id as string;
}

/** PATCH the title through the other instance, without sending its consistency token anywhere */
async function retitleOnTwo(id: string, title: string): Promise<void> {
  const r = await api('PATCH', `/v1/books/${id}`, { tenant, token, base: two, body: { title } });
  expect(r.status).toBe(200);
}

/** the near cache's promise: a write is seen on the other instance this soon (docs/resilience.md) */
const BOUND_MS = 1000;

/**
 * Reads `id` on instance one until it shows `title`; answers how long after `writtenAt` (when the
 * write's answer arrived) the first read that showed it was *sent*: the read's own latency is not
 * part of what is measured, so no margin above the bound is needed.
 */
async function seenAfterMs(id: string, title: string, writtenAt: number, what: string): Promise<number> {
  const sentAt = await waitFor(
    async () => {
      const sent = performance.now();
      const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
      return r.json.title === title ? sent : undefined;
    },
    { timeoutMs: 5 * BOUND_MS, intervalMs: 5, what },
  );
  return sentAt - writtenAt;
}

/** read on `base` until a near hit answered (the counter moved) */
async function warmNear(base: string, id: string, timeoutMs = 5000): Promise<void> {
  await waitFor(
    async () => {
      const before = await metric(base, 'cache_near_hits_total');
      const r = await api('GET', `/v1/books/${id}`, { tenant, base });
      return r.headers.get('X-Cache') === 'HIT' && (await metric(base, 'cache_near_hits_total')) > before;
    },
    { timeoutMs, intervalMs: 20, what: `a near hit on ${base}` },
  );
}

beforeAll(async () => {
  await redis.connect();
  await createTenant(tenant, 'shard-1');
  token = (await registerAndLogin(tenant, 'librarian@example.com')).token;
  restores.push(etcdOverride('cache/near_max_entries', '1000'));
  await waitFor(
    async () => (await Promise.all(INSTANCES.map((b) => metric(b, 'cache_near_live')))).every((v) => v === 1),
    { timeoutMs: 5000, intervalMs: 50, what: 'the near cache live on every instance' },
  );
});
afterAll(() => {
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
  redis.disconnect();
});

describe('near cache', () => {
  it('answers hits in process: no Redis read for them', async () => {
    const id = await newBook('Near');
    await warmNear(one, id);
    const reads = await redisReads();
    const hits = await metric(one, 'cache_near_hits_total');
    for (let i = 0; i < 50; i++) {
      const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
      expect(r.headers.get('X-Cache')).toBe('HIT');
      expect(r.json.title).toBe('Near');
    }
    expect((await metric(one, 'cache_near_hits_total')) - hits).toBe(50);
    // other traffic of this stack may read Redis meanwhile (the other instance's probes do not)
    expect((await redisReads()) - reads).toBeLessThan(5);
  });

  it("a PATCH on one instance, sent without its token, reaches the other's near cache within the 1 s bound (30 rounds)", async () => {
    // Redis writes the invalidation to the other instance's socket and the answer to the writer's
    // raise one after the other, not atomically: on a loaded box a token-less read that follows
    // the write at once can, rarely, still meet the old entry (docs/resilience.md). What is
    // promised is the bound; without invalidations the old title would stay for the whole TTL.
    const id = await newBook('Round 0');
    for (let round = 1; round <= 30; round++) {
      await warmNear(one, id);
      await retitleOnTwo(id, `Round ${round}`);
      const writtenAt = performance.now();
      const ms = await seenAfterMs(id, `Round ${round}`, writtenAt, `round ${round} on the other instance`);
      expect(ms, `round ${round}: first read showing the write sent after`).toBeLessThan(BOUND_MS);
    }
  });

  it('stops answering from memory when Redis freezes, and comes back after SIGCONT', async () => {
    restores.push(etcdOverride('breakers/redis/call_timeout_ms', '100'));
    restores.push(etcdOverride('breakers/redis/failure_threshold', '3'));
    restores.push(etcdOverride('breakers/redis/reset_timeout_ms', '1000'));
    await breakerSettingsInForce('redis', {
      call_timeout_ms: 100,
      failure_threshold: 3,
      reset_timeout_ms: 1000,
    });
    const id = await newBook('Before the freeze');
    await warmNear(one, id);
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.redis.name}.pid`), 'utf8'));
    process.kill(pid, 'SIGSTOP');
    try {
      // the write commits; its version raise cannot reach Redis (kept for later by instance two)
      await retitleOnTwo(id, 'During the freeze');
      // heartbeat bound (1 s) + one heartbeat period (0.2 s) + margin
      await new Promise((r) => setTimeout(r, 1500));
      const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
      expect(r.status).toBe(200);
      expect(r.json.title).toBe('During the freeze');
      expect(r.headers.get('X-Cache')).toBe('BYPASS');
      expect(await metric(one, 'cache_near_live')).toBe(0);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(async () => (await metric(one, 'cache_near_live')) === 1, {
      timeoutMs: 8000,
      intervalMs: 100,
      what: 'the near cache live again',
    });
    // the write during the freeze moved the cache epoch: nothing is cached for
    // replication/max_lag_seconds (5) + 2 s after that (src/cache/read-cache.ts settling)
    await warmNear(one, id, 15_000);
    expect((await api('GET', `/v1/books/${id}`, { tenant, base: one })).json.title).toBe('During the freeze');
  });

  it('comes back after Redis is SIGKILLed and started again, and still sees the next write', async () => {
    const id = await newBook('Before the restart');
    await warmNear(one, id);
    const epochBefore = etcdGet('runtime/cache_epoch');
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.redis.name}.pid`), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => (await metric(one, 'cache_near_live')) === 0, {
      timeoutMs: 3000,
      intervalMs: 20,
      what: 'the near cache off while Redis is gone',
    });
    stackCli(['up']);
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((b) => metric(b, 'cache_near_live')))).every((v) => v === 1),
      { timeoutMs: 10_000, intervalMs: 100, what: 'the near cache live again on every instance' },
    );
    // Redis lost every key, the version keys of recent writes with them: an instance that finds
    // its store mark gone (one look a second) moves the cache epoch (read-cache.ts watchStore),
    // and nothing is cached for replication/max_lag_seconds + 2 s after that
    await waitFor(() => etcdGet('runtime/cache_epoch') !== epochBefore, {
      timeoutMs: 5000,
      intervalMs: 50,
      what: 'the cache epoch moved after the restart',
    });
    const maxLag = Number(etcdGet('replication/max_lag_seconds'));
    await warmNear(one, id, ((Number.isFinite(maxLag) ? maxLag : 5) + 2) * 1000 + 5000);
    await retitleOnTwo(id, 'After the restart');
    const writtenAt = performance.now();
    // within the bound, as in the 30 rounds above: the read right after the write may, rarely,
    // arrive before the invalidation; without tracking the old title would stay for the TTL
    const ms = await seenAfterMs(
      id,
      'After the restart',
      writtenAt,
      'the write after the restart on the other instance',
    );
    expect(ms, 'first read showing the write after the restart sent after').toBeLessThan(BOUND_MS);
  });

  it('cache/near_max_entries 0 switches it off within 2 s', async () => {
    const id = await newBook('Off');
    await warmNear(one, id);
    const t0 = Date.now();
    etcdPut('cache/near_max_entries', '0');
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((b) => metric(b, 'cache_near_live')))).every((v) => v === 0),
      { timeoutMs: 2000, intervalMs: 20, what: 'the near cache off everywhere' },
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    const hits = await metric(one, 'cache_near_hits_total');
    const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
    expect(r.headers.get('X-Cache')).toBe('HIT');
    expect(await metric(one, 'cache_near_hits_total')).toBe(hits);
    expect(await metric(one, 'cache_near_entries')).toBe(0);
  });
});
