import { describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { CACHE_EPOCH_KEY, tenantCacheEpochKey } from '../config/schema.js';
import type { ReplicationPosition } from '../domain/data-access.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { CacheEpochRetirer } from './cache-epoch.js';
import { MemoryCacheStore } from './memory.js';
import { mergePositions } from './position-merge.js';
import { ReadCache } from './read-cache.js';
import { TenantEpochRetirers } from './tenant-epoch-retirers.js';

function setup() {
  const config = new MemoryConfigStore();
  const store = new MemoryCacheStore();
  const metrics = createNoopMetrics();
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics });
  const cache = new ReadCache({ store, config, breakers, logger: silentLogger, metrics });
  const db = {
    title: 'v1',
    loads: 0,
    floors: [] as (string | undefined)[],
    flavours: [] as (string | undefined)[],
  };
  const read = (token?: ReplicationPosition) =>
    cache.read({
      target: { tenantId: 'acme', version: 'book:1', entry: 'book:1' },
      shardId: 'shard-1',
      token,
      load: async (floor) => {
        db.loads++;
        db.floors.push(floor?.gtid);
        db.flavours.push(floor?.flavour);
        await new Promise((r) => setTimeout(r, 5));
        return { value: { title: db.title }, readFrom: 'replica' as const };
      },
    });
  return { config, store, cache, db, read, breakers };
}

/** a ReadCache whose epoch moves land in its own config at once; `moves()` counts them */
function cacheMovingEpochs({ storeWatchMs }: { storeWatchMs?: number } = {}) {
  const config = new MemoryConfigStore();
  const store = new MemoryCacheStore();
  const metrics = createNoopMetrics();
  let moves = 0;
  const cache = new ReadCache({
    store,
    config,
    breakers: new BreakerRegistry({ config, logger: silentLogger, metrics }),
    logger: silentLogger,
    metrics,
    storeWatchMs,
    epochs: new CacheEpochRetirer(
      async (value) => {
        moves++;
        config.put(CACHE_EPOCH_KEY, String(value));
      },
      () => {},
      { minIntervalMs: 0 },
    ),
  });
  return { config, store, cache, moves: () => moves };
}

const pos = (gtid: string): ReplicationPosition => ({ shardId: 'shard-1', flavour: 'mariadb', gtid });

describe('ReadCache', () => {
  it('misses, then hits, and a write makes the next read miss with a floor at the write', async () => {
    const { cache, db, read } = setup();
    expect((await read()).cache).toBe('MISS');
    await new Promise((r) => setTimeout(r, 1));
    expect(await read()).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    db.title = 'v2';
    await cache.invalidate('acme', ['book:1'], pos('0-11-7'));
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    expect(db.floors.at(-1)).toBe('0-11-7');
  });

  it("forgets a shard whose master's history went back: a write at a lower sequence number is seen, other shards kept", async () => {
    const { cache, store, db, read } = setup();
    await cache.invalidate('acme', ['book:1'], pos('0-11-8314'));
    await read();
    await new Promise((r) => setTimeout(r, 1));
    expect(await read()).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    await store.set('sg:{acme}:shard-2:v:book:1', '0-21-9', 60);
    await store.set('sg:{acme}:shard-10:v:book:1', '0-31-9', 60);
    // RESET MASTER: the next write numbers 0-11-3, which does not raise 0-11-8314
    db.title = 'v2';
    await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
    expect(await read(pos('0-11-3'))).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    cache.forgetShard('shard-1');
    await vi.waitFor(async () => expect(await store.get('sg:{acme}:shard-1:v:book:1')).toBeUndefined());
    expect(await read(pos('0-11-3'))).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    db.title = 'v3';
    await cache.invalidate('acme', ['book:1'], pos('0-11-4'));
    expect(await read(pos('0-11-4'))).toMatchObject({ value: { title: 'v3' } });
    expect(await store.get('sg:{acme}:shard-2:v:book:1')).toBe('0-21-9');
    expect(await store.get('sg:{acme}:shard-10:v:book:1')).toBe('0-31-9');
  });

  it('forgets a shard again when asked while its deletion runs (keys filled during the first pass)', async () => {
    const { store, cache } = setup();
    await store.set('sg:{acme}:shard-1:v:book:1', '0-11-9', 60);
    const passes: string[][] = [];
    const deleteMatching = store.deleteMatching.bind(store);
    let release = () => {};
    const firstPassHeld = new Promise<void>((r) => (release = r));
    store.deleteMatching = async (pattern: string) => {
      const n = await deleteMatching(pattern);
      passes.push([pattern]);
      if (passes.length === 1) await firstPassHeld; // the first SCAN is still on its way
      return n;
    };
    cache.forgetShard('shard-1');
    await vi.waitFor(() => expect(passes).toHaveLength(1));
    // filled behind the first pass's cursor, then a second reset is detected
    await store.set('sg:{acme}:shard-1:v:book:2', '0-11-10', 60);
    cache.forgetShard('shard-1');
    cache.forgetShard('shard-1'); // asked twice meanwhile: one more pass
    release();
    await vi.waitFor(() => expect(passes).toHaveLength(2));
    expect(await store.get('sg:{acme}:shard-1:v:book:2')).toBeUndefined();
    await new Promise((r) => setTimeout(r, 20));
    expect(passes).toHaveLength(2);
    // done: a later reset starts a new deletion
    cache.forgetShard('shard-1');
    await vi.waitFor(() => expect(passes).toHaveLength(3));
  });

  it('a version key that vanishes brings back no entry filled before a later write', async () => {
    const { cache, db, read, store } = setup();
    const versionKey = 'sg:{acme}:shard-1:v:book:1';
    const deleteVersion = () => store.del([versionKey]);
    // a new item: no version key yet; its first read makes a mark, not a "no version" entry
    expect((await read()).cache).toBe('MISS');
    expect(db.floors.at(-1)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1));
    expect(await read()).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    db.title = 'v2';
    await cache.invalidate('acme', ['book:1'], pos('0-11-7'));
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    // an operator deletes the version key (or Redis evicts it): a miss, never 'v1' again
    await deleteVersion();
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    await new Promise((r) => setTimeout(r, 1));
    expect(await read()).toMatchObject({ cache: 'HIT', value: { title: 'v2' } });
    // again after the fill made without a version: a later write, a later deletion
    db.title = 'v3';
    await cache.invalidate('acme', ['book:1'], pos('0-11-8'));
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v3' } });
    await deleteVersion();
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v3' } });
    // the mark is no floor: a miss under it (its entry gone) reads at none
    expect(db.floors.at(-1)).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1));
    const mark = (await store.getVersioned(versionKey, 'sg:{acme}:shard-1:e:book:1:', '')).version;
    expect(mark).toMatch(/^~/);
    await store.del([`sg:{acme}:shard-1:e:book:1:${mark}`]);
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v3' } });
    expect(db.floors.at(-1)).toBeUndefined();
    // and a raise replaces it whole
    await cache.invalidate('acme', ['book:1'], pos('0-11-9'));
    expect(await store.get(versionKey)).toBe('0-11-9');
  });

  it('a read that caches nothing (not found) leaves no version key behind', async () => {
    const { cache, store } = setup();
    const r = await cache.read({
      target: { tenantId: 'acme', version: 'book:404', entry: 'book:404' },
      shardId: 'shard-1',
      cacheable: (v) => v !== undefined,
      load: async () => ({ value: undefined, readFrom: 'replica' as const }),
    });
    expect(r.cache).toBe('MISS');
    await new Promise((r) => setTimeout(r, 5));
    expect(await store.get('sg:{acme}:shard-1:v:book:404')).toBeUndefined();
  });

  it("a token-less miss of a MySQL shard's key reads at a floor of the MySQL flavour", async () => {
    const { cache, db, read } = setup();
    const set = '3e11fa47-71ca-11e1-9e33-c80aa9429562:1-7';
    await cache.invalidate('acme', ['book:1'], { shardId: 'shard-1', flavour: 'mysql', gtid: set });
    expect((await read()).cache).toBe('MISS');
    expect([db.floors.at(-1), db.flavours.at(-1)]).toEqual([set, 'mysql']);
    await cache.invalidate('acme', ['book:1'], pos('0-11-7'));
    await read();
    expect([db.floors.at(-1), db.flavours.at(-1)]).toEqual(['0-11-7', 'mariadb']);
  });

  it('makes one database read for concurrent misses of one key', async () => {
    const { db, read } = setup();
    const results = await Promise.all(Array.from({ length: 200 }, () => read()));
    expect(db.loads).toBe(1);
    expect(results.every((r) => r.cache === 'MISS')).toBe(true);
  });

  it('does not serve an entry older than the caller token', async () => {
    const { db, read } = setup();
    await read();
    await new Promise((r) => setTimeout(r, 1));
    const r = await read(pos('0-11-9'));
    expect(r.cache).toBe('MISS');
    expect(db.floors.at(-1)).toBe('0-11-9');
    await new Promise((r) => setTimeout(r, 1));
    expect((await read(pos('0-11-9'))).cache).toBe('HIT');
    expect((await read(pos('0-11-10'))).cache).toBe('MISS');
  });

  it('loads at both the version and the token when neither contains the other (writes in two GTID domains)', async () => {
    const { cache, db, read } = setup();
    await cache.invalidate('acme', ['book:1'], pos('0-1-60,1-2-5'));
    await read(pos('1-2-7'));
    // the token alone (1-2-7) would let a replica without the version's write 0-1-60 fill it
    expect(db.floors.at(-1)).toBe('0-1-60,1-2-7');
  });

  it('bypasses when disabled or when the store fails, and still answers from the database', async () => {
    const { config, store, read } = setup();
    config.put('cache/enabled', 'false');
    expect((await read()).cache).toBe('BYPASS');
    config.put('cache/enabled', 'true');
    store.failWith = new Error('down');
    const r = await read();
    expect(r).toMatchObject({ cache: 'BYPASS', value: { title: 'v1' } });
  });

  it('lets no caller wait for a half-open trial while the store hangs: trials run in the background', async () => {
    const { config, store, read, cache, breakers } = setup();
    config.put('breakers/redis/failure_threshold', '1');
    config.put('breakers/redis/reset_timeout_ms', '100');
    config.put('breakers/redis/call_timeout_ms', '500');
    config.put('breakers/redis/half_open_max_calls', '1');
    const breaker = breakers.get('redis', 'redis');
    const timed = async () => {
      const started = Date.now();
      const r = await read();
      return { cache: r.cache, ms: Date.now() - started };
    };
    store.hangs = true;
    // the first read pays the call timeout and opens the breaker
    expect(await timed()).toMatchObject({ cache: 'BYPASS' });
    expect(breaker.state).toBe('open');
    await new Promise((r) => setTimeout(r, 130));
    expect(breaker.state).toBe('half_open');
    // the read starts a trial in the background and bypasses at once, as does the next one
    const calls = store.calls;
    const during = [await timed(), await timed()];
    expect(during.map((d) => d.cache)).toEqual(['BYPASS', 'BYPASS']);
    expect(Math.max(...during.map((d) => d.ms))).toBeLessThan(250);
    expect(store.calls).toBe(calls + 1); // the one trial; no caller's call
    expect(breaker.state).toBe('half_open');
    // the store answers again: the pending trial succeeds and closes the breaker
    store.hangs = false;
    await new Promise((r) => setTimeout(r, 50));
    expect(breaker.state).toBe('closed');
    expect((await read()).cache).toBe('MISS');
    cache.close();
  });

  it('keeps a write made during the trials and raises its version as soon as they close the breaker', async () => {
    const { config, store, read, cache, db, breakers } = setup();
    config.put('breakers/redis/failure_threshold', '1');
    config.put('breakers/redis/reset_timeout_ms', '100');
    config.put('breakers/redis/call_timeout_ms', '500');
    config.put('breakers/redis/half_open_max_calls', '1');
    const breaker = breakers.get('redis', 'redis');
    await read();
    await new Promise((r) => setTimeout(r, 5));
    expect((await read()).cache).toBe('HIT');
    store.hangs = true;
    await read(); // opens the breaker
    await new Promise((r) => setTimeout(r, 130));
    expect(breaker.state).toBe('half_open');
    db.title = 'v2';
    const started = Date.now();
    await cache.invalidate('acme', ['book:1'], pos('0-11-5')); // refused at once, kept; a trial starts
    expect(Date.now() - started).toBeLessThan(250);
    store.hangs = false;
    await new Promise((r) => setTimeout(r, 50));
    // well before the retry timer's first tick (1 s): the raise went when the trial closed it
    expect(breaker.state).toBe('closed');
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    cache.close();
  });

  it('keeps a failed invalidation and applies it when the store returns', async () => {
    const { cache, store, db, read } = setup();
    await read();
    store.failWith = new Error('down');
    db.title = 'v2';
    await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
    store.failWith = undefined;
    await new Promise((r) => setTimeout(r, 1100));
    expect(await read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    cache.close();
  });
});

describe('ReadCache at shutdown', () => {
  it('delivers deferred invalidations past an open breaker once the store answers, and counts those it could not', async () => {
    const { cache, store, db, read, config, breakers } = setup();
    config.put('breakers/redis/failure_threshold', '1');
    await read();
    store.failWith = new Error('down');
    db.title = 'v2';
    await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
    await cache.invalidate('acme', ['books'], pos('0-11-3'));
    expect(breakers.get('redis', 'redis').state).toBe('open');
    // still down for the whole window: both left, and the call returns in time
    const t0 = Date.now();
    expect(await cache.flushPending(300)).toBe(2);
    expect(Date.now() - t0).toBeLessThan(1000);
    // back while the breaker is still open: delivered anyway
    setTimeout(() => {
      store.failWith = undefined;
    }, 100);
    expect(await cache.flushPending(2000)).toBe(0);
    cache.close();
    // another instance (a fresh cache on the same store) no longer finds the old entry
    const other = new ReadCache({
      store,
      config,
      breakers: new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() }),
      logger: silentLogger,
      metrics: createNoopMetrics(),
    });
    const r = await other.read({
      target: { tenantId: 'acme', version: 'book:1', entry: 'book:1' },
      shardId: 'shard-1',
      load: async () => ({ value: { title: db.title }, readFrom: 'replica' as const }),
    });
    expect(r).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    other.close();
  });

  it('does not wait for a store that hangs beyond its window', async () => {
    const { cache, store } = setup();
    store.failWith = new Error('down');
    await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
    store.failWith = undefined;
    store.hangs = true;
    const t0 = Date.now();
    expect(await cache.flushPending(200)).toBe(1);
    expect(Date.now() - t0).toBeLessThan(600);
    store.hangs = false;
    cache.close();
  });
});

describe('ReadCache early refresh', () => {
  it('renews a hot entry in the last part of its TTL with one load, answering HIT meanwhile', async () => {
    const { config, db, read } = setup();
    config.put('cache/ttl_seconds', '10');
    const t0 = Date.now();
    const now = vi.spyOn(Date, 'now').mockReturnValue(t0);
    const random = vi.spyOn(Math, 'random').mockReturnValue(0.5);
    try {
      await read();
      await new Promise((r) => setTimeout(r, 1));
      now.mockReturnValue(t0 + 5000); // mid-life: no refresh
      expect((await read()).cache).toBe('HIT');
      expect(db.loads).toBe(1);
      now.mockReturnValue(t0 + 9900); // 0.1 s left of a 2 s window: refresh probability 0.95
      const results = await Promise.all(Array.from({ length: 20 }, () => read()));
      expect(results.every((r) => r.cache === 'HIT')).toBe(true);
      await new Promise((r) => setTimeout(r, 20));
      expect(db.loads).toBe(2);
      // the renewal, under the mark the first fill made, reads at no floor (a mark is no position)
      expect(db.floors).toEqual([undefined, undefined]);
    } finally {
      now.mockRestore();
      random.mockRestore();
    }
  });
});

describe('ReadCache with a near cache', () => {
  /** two instances (own config and near cache) on one store */
  function pair() {
    const store = new MemoryCacheStore();
    const db = { title: 'v1', loads: 0 };
    const instance = () => {
      const config = new MemoryConfigStore();
      config.put('cache/near_max_entries', '100');
      const metrics = createNoopMetrics();
      const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics });
      const cache = new ReadCache({ store, config, breakers, logger: silentLogger, metrics });
      const read = (token?: ReplicationPosition) =>
        cache.read({
          target: { tenantId: 'acme', version: 'book:1', entry: 'book:1' },
          shardId: 'shard-1',
          token,
          load: async () => {
            db.loads++;
            return { value: { title: db.title }, readFrom: 'replica' as const };
          },
        });
      return { config, cache, read };
    };
    return { store, db, a: instance(), b: instance() };
  }
  const settle = () => new Promise((r) => setTimeout(r, 1));

  it('answers repeated hits without calling the store', async () => {
    const { store, a } = pair();
    expect((await a.read()).cache).toBe('MISS');
    await settle();
    expect((await a.read()).cache).toBe('HIT');
    const calls = store.calls;
    for (let i = 0; i < 5; i++)
      expect(await a.read()).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    expect(store.calls).toBe(calls);
  });

  it("another instance's write reaches this instance's next read", async () => {
    const { store, db, a, b } = pair();
    await a.read();
    await settle();
    await a.read();
    db.title = 'v2';
    await b.cache.invalidate('acme', ['book:1'], pos('0-11-7'));
    const calls = store.calls;
    expect(await a.read()).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    expect(store.calls).toBeGreaterThan(calls);
  });

  it('drops what it holds of a tenant that moves to another shard', async () => {
    const { store, a } = pair();
    a.config.put('shards/shard-1', JSON.stringify({ master: { host: 'h', port: 1 }, replicas: [] }));
    a.config.put('shards/shard-2', JSON.stringify({ master: { host: 'h', port: 2 }, replicas: [] }));
    a.config.put('tenants/acme', '{"shard":"shard-1","status":"active"}');
    a.config.put('tenants/acmeco', '{"shard":"shard-1","status":"active"}');
    await a.read();
    await settle();
    await a.read();
    const calls = store.calls;
    // another tenant's entry changes nothing; a status change neither
    a.config.put('tenants/acmeco', '{"shard":"shard-2","status":"active"}');
    a.config.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
    expect((await a.read()).cache).toBe('HIT');
    expect(store.calls).toBe(calls);
    // acme moves (to shard-2 and back, as far as this instance saw): its near entry is gone
    a.config.put('tenants/acme', '{"shard":"shard-2","status":"readonly"}');
    await a.read();
    expect(store.calls).toBeGreaterThan(calls);
  });

  it('does not answer a token newer than the near entry from it', async () => {
    const { db, a } = pair();
    await a.read();
    await settle();
    await a.read();
    db.title = 'v2'; // written elsewhere, its version raise not seen yet
    expect(await a.read(pos('0-11-9'))).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
  });

  it('goes back to the store while tracking is down, and when the near cache is switched off', async () => {
    const { store, a } = pair();
    await a.read();
    await settle();
    await a.read();
    store.tracking.down();
    let calls = store.calls;
    expect((await a.read()).cache).toBe('HIT');
    expect(store.calls).toBe(calls + 1);
    store.tracking.up();
    a.config.put('cache/near_max_entries', '0');
    calls = store.calls;
    await a.read();
    await a.read();
    expect(store.calls).toBe(calls + 2);
    expect(store.tracking.active).toBe(false);
  });

  it('is off by default', async () => {
    const store = new MemoryCacheStore();
    const config = new MemoryConfigStore();
    const metrics = createNoopMetrics();
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics });
    new ReadCache({ store, config, breakers, logger: silentLogger, metrics });
    expect(store.tracking.active).toBe(false);
  });
});

describe('mergePositions', () => {
  it('keeps the highest seq per domain, never lowering', () => {
    expect(mergePositions('mariadb', '0-11-9,1-12-3', '0-11-7')).toBe('0-11-9,1-12-3');
    expect(mergePositions('mariadb', '0-11-9', '0-21-12,2-1-1')).toBe('0-21-12,2-1-1');
    expect(mergePositions('mariadb', undefined, '0-11-1')).toBe('0-11-1');
  });
});

describe('ReadCache and the cache epoch', () => {
  /** two instances on one Redis and one config; `a` moves the epoch through the config */
  function twoInstances() {
    const config = new MemoryConfigStore();
    const store = new MemoryCacheStore();
    const metrics = createNoopMetrics();
    const moves: number[] = [];
    const tenantMoves: string[] = [];
    const make = (epochs?: CacheEpochRetirer, tenantEpochs?: TenantEpochRetirers) =>
      new ReadCache({
        store,
        config,
        breakers: new BreakerRegistry({ config, logger: silentLogger, metrics }),
        logger: silentLogger,
        metrics,
        epochs,
        tenantEpochs,
      });
    const a = make(
      new CacheEpochRetirer(
        async (value) => {
          moves.push(value);
          config.put(CACHE_EPOCH_KEY, String(value));
        },
        () => {},
      ),
      new TenantEpochRetirers(
        (tenantId) => async (value) => {
          tenantMoves.push(tenantId);
          config.put(tenantCacheEpochKey(tenantId), String(value));
        },
        () => {},
        { maxTenantsPerSecond: 2 },
      ),
    );
    const b = make();
    const db = { title: 'v1' };
    const readOn = (cache: ReadCache, tenantId = 'acme') =>
      cache.read({
        target: { tenantId, version: 'book:1', entry: 'book:1' },
        shardId: 'shard-1',
        load: async () => ({ value: { title: db.title }, readFrom: 'replica' as const }),
      });
    return { config, store, a, b, db, readOn, moves, tenantMoves };
  }

  it('a write whose invalidation Redis refused retires the entry on every instance before it answers', async () => {
    const { config, store, a, b, db, readOn, moves } = twoInstances();
    await readOn(b);
    await new Promise((r) => setTimeout(r, 1));
    expect(await readOn(b)).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    db.title = 'v2';
    // Redis refuses only the writer (a partition, or its breaker open): the raise is kept in `a`
    const set = store.raisePositions.bind(store);
    store.raisePositions = async () => {
      throw new Error('unreachable from a');
    };
    await a.invalidate('acme', ['book:1'], pos('0-11-3'));
    expect(moves).toHaveLength(1);
    // `b` still reaches Redis, where the old entry is: not served. Right after a move nothing is
    // cached (a fill may meet a replica that lacks a write whose raise never lands)
    expect(await readOn(b)).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    await new Promise((r) => setTimeout(r, 1));
    expect(await readOn(b)).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    // a move made longer ago than replication/max_lag_seconds + 2 s: cached again
    config.put(CACHE_EPOCH_KEY, String((Date.now() - 60_000) * 1000));
    expect(await readOn(b)).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    await new Promise((r) => setTimeout(r, 1));
    expect(await readOn(b)).toMatchObject({ cache: 'HIT', value: { title: 'v2' } });
    store.raisePositions = set;
    a.close();
    b.close();
  });

  it("a write of unknown outcome retires its tenant's entries on every instance before it answers, and no other tenant's", async () => {
    const { b, a, db, readOn, moves, tenantMoves } = twoInstances();
    await readOn(b, 'acme');
    await readOn(b, 'globex');
    await new Promise((r) => setTimeout(r, 1));
    expect(await readOn(b, 'acme')).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    db.title = 'v2'; // applied for acme, but the writer never learnt it nor its position
    await a.afterUncertainWrite('acme');
    expect([moves.length, tenantMoves]).toEqual([0, ['acme']]);
    expect(await readOn(b, 'acme')).toMatchObject({ cache: 'MISS', value: { title: 'v2' } });
    expect(await readOn(b, 'globex')).toMatchObject({ cache: 'HIT', value: { title: 'v1' } });
    // right after the move nothing of acme is cached (a replica may lack the write), globex is
    await new Promise((r) => setTimeout(r, 1));
    expect((await readOn(b, 'acme')).cache).toBe('MISS');
    // a second uncertain write of acme within 0.5 s: covered by the move just made
    await a.afterUncertainWrite('acme');
    expect(tenantMoves).toEqual(['acme']);
    a.close();
    b.close();
  });

  it('a write of unknown outcome moves the global epoch past the tenant moves a second, or without a tenant', async () => {
    const { b, a, readOn, moves, tenantMoves } = twoInstances();
    await a.afterUncertainWrite('t1');
    await a.afterUncertainWrite('t2');
    expect([moves.length, tenantMoves]).toEqual([0, ['t1', 't2']]);
    await readOn(b, 'globex');
    await new Promise((r) => setTimeout(r, 1));
    expect((await readOn(b, 'globex')).cache).toBe('HIT');
    await a.afterUncertainWrite('t3');
    expect([moves.length, tenantMoves]).toEqual([1, ['t1', 't2']]);
    expect((await readOn(b, 'globex')).cache).toBe('MISS');
    const { a: other, moves: otherMoves } = twoInstances();
    await other.afterUncertainWrite();
    expect(otherMoves).toHaveLength(1);
    a.close();
    b.close();
    other.close();
  });

  it("an operator put of a tenant's epoch retires that tenant's entries only; a rejected value keeps them", async () => {
    const { config, b, readOn } = twoInstances();
    await readOn(b, 'acme');
    await readOn(b, 'globex');
    await new Promise((r) => setTimeout(r, 1));
    config.put(tenantCacheEpochKey('acme'), '42'); // no time of a move: nothing settles
    expect((await readOn(b, 'acme')).cache).toBe('MISS');
    expect((await readOn(b, 'globex')).cache).toBe('HIT');
    await new Promise((r) => setTimeout(r, 1));
    expect((await readOn(b, 'acme')).cache).toBe('HIT');
    config.put(tenantCacheEpochKey('acme'), 'soon');
    expect((await readOn(b, 'acme')).cache).toBe('HIT');
    b.close();
  });

  it('a Redis that lost its keys (restart, FLUSHALL) moves the epoch once the watch sees it', async () => {
    const { store, cache, moves } = cacheMovingEpochs({ storeWatchMs: 5 });
    const read = () =>
      cache.read({
        target: { tenantId: 'acme', version: 'book:1', entry: 'book:1' },
        shardId: 'shard-1',
        load: async () => ({ value: { title: 'old' }, readFrom: 'replica' as const }),
      });
    await new Promise((r) => setTimeout(r, 30));
    expect(moves()).toBe(0); // a mark found absent at the start is written, not taken for a loss
    await read();
    await new Promise((r) => setTimeout(r, 1));
    expect((await read()).cache).toBe('HIT');
    await store.del(['sg:store-mark']); // what a FLUSHALL or a restart leaves
    await new Promise((r) => setTimeout(r, 30));
    expect(moves()).toBe(1);
    expect((await read()).cache).toBe('MISS');
    cache.close();
  });

  it('an operator put of another epoch retires every entry; the same epoch keeps them', async () => {
    const { config, b, readOn } = twoInstances();
    await readOn(b);
    await new Promise((r) => setTimeout(r, 1));
    config.put(CACHE_EPOCH_KEY, '0'); // absent reads as 0: nothing changes
    expect((await readOn(b)).cache).toBe('HIT');
    config.put(CACHE_EPOCH_KEY, '42');
    expect((await readOn(b)).cache).toBe('MISS');
    config.put(CACHE_EPOCH_KEY, 'soon'); // rejected: the last good epoch stays
    await new Promise((r) => setTimeout(r, 1));
    expect((await readOn(b)).cache).toBe('HIT');
    b.close();
  });
});

describe('ReadCache epoch moves during an outage', () => {
  function failingCache() {
    const { config, store, cache, moves } = cacheMovingEpochs();
    store.failWith = new Error('down');
    return { config, cache, moves };
  }

  it('a failed invalidation within 500 ms of the last move waits for no move of its own', async () => {
    const { config, cache, moves } = failingCache();
    await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
    await cache.invalidate('acme', ['book:2'], pos('0-11-4'));
    expect(moves()).toBe(1);
    // a move older than that: the next failure moves it again
    config.put(CACHE_EPOCH_KEY, String((Date.now() - 600) * 1000));
    await cache.invalidate('acme', ['book:3'], pos('0-11-5'));
    expect(moves()).toBe(2);
    cache.close();
  });

  it('an operator epoch beyond the clock does not stop the moves (it is no time of a move)', async () => {
    const { config, cache, moves } = failingCache();
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    try {
      // within the schema's range; read as a time it is the year 2255
      config.put(CACHE_EPOCH_KEY, '9000000000000000');
      vi.advanceTimersByTime(1000);
      await cache.invalidate('acme', ['book:1'], pos('0-11-3'));
      expect(moves()).toBe(1);
      expect(config.current().cache.epoch).not.toBe(9_000_000_000_000_000);
    } finally {
      vi.useRealTimers();
      cache.close();
    }
  });
});
