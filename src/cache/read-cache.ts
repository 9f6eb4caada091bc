/**
 * Cache-aside for hot reads that is never staler than the caller's own write (issue "cache").
 *
 * Keys are namespaced by tenant and shard (`sg:{<tenant>}:<shard>:…`; the hash tag keeps one
 * tenant in one slot). The shard is part of it because positions are: after a tenant moves
 * (`shardgate-ctl tenants move`, which clears the namespace of the shard it moves to), nothing
 * cached, nor any version position, of its former shard is read again.
 * Each cached thing belongs to a *version key* that holds the replication position (GTID) of the
 * last committed write that changed it — one per item (`book:<id>`) and one per list family
 * (`books`). Entries live at `…:e:<name>:<version>…`, so:
 * - invalidation after commit = raising the version key to the write's position (one command;
 *   old entries are never read again and expire by TTL; list pages need no key scan);
 * - a miss loads with that position as a read-your-writes floor, so an entry filled after a write
 *   always contains it, even when the read went to a lagging replica (no stale refill);
 * - an entry records the position it is known to include; a caller whose consistency token is
 *   newer than that gets a MISS and a read at its token, never the entry;
 * - nothing is stored under "no version": a read that finds the version key absent (an item never
 *   written, or its key expired, evicted, deleted by hand) misses, and its fill sets the key to a
 *   fresh mark and stores under that (CacheStore.fillVersioned), so a vanished version key never
 *   makes an older entry current again.
 * Concurrent misses of one key in one instance share one database read (single-flight). Across
 * instances, hot entries are renewed early (probabilistically, in the last 20% of their TTL) by
 * one reader, so they do not expire under load and the instances do not refill them together.
 *
 * With `cache/near_max_entries` > 0 and a store that offers KeyTracking, hits are answered from
 * an in-process near cache (near-cache.ts) without a round trip; its coherence rules are there.
 *
 * Redis is meant to run bounded with `maxmemory-policy volatile-ttl` (stack/redis.ts says why an
 * evicted version key does not let an older entry be served to a reader with a token).
 *
 * Failure modes: the store is behind the `redis` breaker; a failed or refused call turns the read
 * into `BYPASS` (straight to the database, bounded by the breaker's call_timeout_ms). A version
 * raise that fails is kept in memory and retried (pending-raises.ts), so a write made while Redis
 * was down still invalidates when it returns (up to 10,000 keys; beyond that TTL bounds staleness),
 * and the write waits until the cache epoch moved (cache-epoch.ts): from then on no instance serves
 * an entry filled before it, even before the raise lands, even if this instance dies first.
 */

import type { ConfigChange } from '../config/config-state.js';
import type { ConfigStore } from '../config/interface.js';
import { looseTenantEntry } from '../config/loose-entry.js';
import { CACHE_EPOCH_KEY, TENANT_CACHE_EPOCH_PREFIX } from '../config/schema.js';
import type { ReadSource, ReplicationPosition } from '../domain/data-access.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { gtidContains, gtidTextFlavour, parseGtid } from '../routing/gtid.js';
import type { CacheEpochRetirer } from './cache-epoch.js';
import { cacheNamespace } from './cache-namespace.js';
import { type CacheStore, versionPosition } from './interface.js';
import { NearCache } from './near-cache.js';
import { PendingRaises } from './pending-raises.js';
import { mergePositions } from './position-merge.js';
import type { TenantEpochRetirers } from './tenant-epoch-retirers.js';

export type CacheStatus = 'HIT' | 'MISS' | 'BYPASS';

/** the shard a raw `tenants/<id>` value names, if any */
const shardOf = (raw: string | undefined) => looseTenantEntry(raw)?.shard;

export interface CacheTarget {
  tenantId: string;
  /** version key name: `book:<id>`, `books`, `member:<id>` */
  version: string;
  /** entry name under that version: `book:<id>`, `books:<query>` */
  entry: string;
}

export interface CachedRead<T> {
  value: T;
  cache: CacheStatus;
  readFrom: ReadSource;
}

export interface ReadThroughOptions<T> {
  target: CacheTarget;
  shardId: string;
  flavour?: ReplicationPosition['flavour'];
  /** the caller's verified consistency token, if any */
  token?: ReplicationPosition;
  /** whether a loaded value may be cached (e.g. not "not found") */
  cacheable?: (value: T) => boolean;
  load: (floor: ReplicationPosition | undefined) => Promise<{ value: T; readFrom: ReadSource }>;
}

interface Entry<T> {
  /** entry format version: bump when the cached shapes change */
  f: number;
  /** position the data is known to include ('' = unknown) */
  p: string;
  s: ReadSource;
  /** expiry (ms since epoch) and lifetime (ms) of the entry, for early refresh */
  x?: number;
  t?: number;
  /** the cache epoch it was filled under (cache-epoch.ts); absent = 0 */
  g?: number;
  /** its tenant's cache epoch it was filled under (tenant-epoch-retirers.ts); absent = 0 */
  h?: number;
  d: T;
}

const ENTRY_FORMAT = 1;
const VERSION_TTL_SECONDS = 24 * 3600;
const EARLY_REFRESH_SHARE = 0.2;
/** a failed invalidation this soon after the epoch's last move needs no move of its own (invalidate) */
const RECENT_MOVE_MS = 500;
/** what a half-open breaker's trial calls read (redis()); never written */
const PROBE_KEY = 'sg:breaker-probe';
/**
 * Written once by the first instance that finds it absent, with a TTL of ten years (the stack's
 * `volatile-ttl` eviction takes keys of the shortest TTL first): gone means Redis lost its keys
 * (a restart without persistence, FLUSHALL). See `watchStore`.
 */
const STORE_MARK_KEY = 'sg:store-mark';
const STORE_MARK_TTL_SECONDS = 10 * 365 * 24 * 3600;

/**
 * When an epoch value (µs, cache-epoch.ts nextEpoch: the wall time of the move on the host that
 * made it) took effect, on the monotonic clock `now` (performance.now): its age is read once,
 * against this host's wall clock (a value written by another process can be compared with
 * nothing else), never less than 0 (a value ahead of the clock took effect now); from then on the
 * settling time runs on the monotonic clock, so a later step of the wall clock does not stretch
 * or cut it.
 */
function tookEffect(epochUs: number, now: number): number {
  return now - Math.max(0, Date.now() - Math.floor(epochUs / 1000));
}

export class ReadCache {
  private readonly inflight = new Map<string, Promise<{ value: unknown; readFrom: ReadSource }>>();
  private readonly pending: PendingRaises;
  private readonly epochs: CacheEpochRetirer | undefined;
  private readonly tenantEpochs: TenantEpochRetirers | undefined;
  private readonly store: CacheStore;
  private readonly config: ConfigStore;
  private readonly breakers: BreakerRegistry;
  private readonly logger: Logger;
  private readonly results;
  private readonly loads;
  private readonly refreshes;
  private readonly near: NearCache<Entry<unknown>> | undefined;
  private readonly nearHits;
  private unsubscribe: (() => void) | undefined;
  private readonly unsubscribeEpoch: () => void;
  /**
   * When the epoch in force took effect (ms, performance.now): the earlier of when this instance
   * saw it and the time a move wrote into it (cache-epoch.ts nextEpoch; an operator's small
   * number reads as 1970). See `tookEffect`.
   */
  private epochSince = Number.NEGATIVE_INFINITY;
  /** the same per tenant, for its own epoch (`runtime/tenant_cache_epoch/<id>`); pruned in noteTenantEpoch */
  private readonly tenantEpochSince = new Map<string, number>();
  private readonly deferrals: WarnLimiter;
  private readonly storeWatch: ReturnType<typeof setInterval> | undefined;
  /** the store mark was seen (or written) by this instance: its absence now means a loss */
  private storeMarked = false;
  /** shards whose keys `forgetShard` is deleting */
  private readonly forgetting = new Set<string>();
  /** shards forgotten again while their deletion ran: it runs once more when done */
  private readonly forgetAgain = new Set<string>();
  private closed = false;

  constructor({
    store,
    config,
    breakers,
    logger,
    metrics,
    epochs,
    tenantEpochs,
    storeWatchMs = 1000,
  }: {
    store: CacheStore;
    config: ConfigStore;
    breakers: BreakerRegistry;
    logger: Logger;
    metrics: Metrics;
    /** moves the cache epoch when an invalidation cannot reach Redis; without it, TTL bounds staleness */
    epochs?: CacheEpochRetirer;
    /** moves a tenant's own epoch after its write of unknown outcome; without it, the global one moves */
    tenantEpochs?: TenantEpochRetirers;
    /** how often Redis is asked whether it lost its keys (`watchStore`); 0 = never */
    storeWatchMs?: number;
  }) {
    this.epochs = epochs;
    this.tenantEpochs = tenantEpochs;
    if (storeWatchMs > 0) {
      this.storeWatch = setInterval(() => void this.watchStore(), storeWatchMs);
      this.storeWatch.unref();
    }
    const noteEpoch = () => {
      this.epochSince = tookEffect(config.current().cache.epoch, performance.now());
    };
    noteEpoch();
    this.config = config;
    const startedAt = performance.now();
    for (const id of config.current().cache.tenantEpochs.keys()) this.noteTenantEpoch(id, startedAt);
    this.unsubscribeEpoch = config.onChange((_snapshot, changes) => {
      const now = performance.now();
      let tenants = false;
      for (const c of changes) {
        if (c.key === CACHE_EPOCH_KEY) noteEpoch();
        else if (c.key.startsWith(TENANT_CACHE_EPOCH_PREFIX)) {
          this.noteTenantEpoch(c.key.slice(TENANT_CACHE_EPOCH_PREFIX.length), now);
          tenants = true;
        }
      }
      if (tenants) this.pruneTenantEpochs(now);
    });
    this.store = store;
    this.breakers = breakers;
    this.logger = logger.child({ component: 'cache' });
    this.deferrals = new WarnLimiter(this.logger, 10_000);
    const raise = (key: string, flavour: ReplicationPosition['flavour'], position: string) =>
      this.store.raisePositions([key], flavour, position, VERSION_TTL_SECONDS);
    this.pending = new PendingRaises((...a) => this.redis(() => raise(...a)), raise);
    this.results = metrics.counter({
      name: 'cache_requests_total',
      help: 'read-cache lookups by result (hit, miss, bypass)',
      labelNames: ['result'],
    });
    this.loads = metrics.counter({
      name: 'cache_db_loads_total',
      help: 'database reads made to fill the cache (after single-flight)',
      labelNames: ['entry'],
    });
    this.refreshes = metrics.counter({
      name: 'cache_early_refreshes_total',
      help: 'hot entries renewed before they expired',
    });
    this.nearHits = metrics.counter({
      name: 'cache_near_hits_total',
      help: 'cache hits answered from the in-process near cache (also counted as hits)',
    });
    metrics.gauge({
      name: 'cache_pending_invalidations',
      help: 'version raises waiting for Redis to come back',
      collect: (g) => g.set({}, this.pending.size),
    });
    const tracking = store.tracking;
    if (tracking) {
      const near = new NearCache<Entry<unknown>>(tracking);
      this.near = near;
      const apply = (_snapshot?: unknown, changes: readonly ConfigChange[] = []) => {
        near.maxEntries = config.current().cache.nearMaxEntries;
        tracking.activate(near.maxEntries > 0);
        // a tenant that moved (tenants/<id> names another shard): nothing held for it stays, so
        // a move back never meets an entry of its earlier stay on that shard
        for (const c of changes) {
          if (!c.key.startsWith('tenants/') || shardOf(c.old) === shardOf(c.new)) continue;
          near.forgetPrefix(`${cacheNamespace(c.key.slice('tenants/'.length), '')}`);
        }
      };
      this.unsubscribe = config.onChange(apply);
      apply();
      metrics.gauge({
        name: 'cache_near_entries',
        help: 'entries held by the in-process near cache',
        collect: (g) => g.set({}, near.size),
      });
      metrics.gauge({
        name: 'cache_near_live',
        help: '1 while the near cache may answer (invalidation tracking live and the near cache on)',
        collect: (g) => g.set({}, near.maxEntries > 0 && tracking.live() ? 1 : 0),
      });
    }
  }

  /**
   * Every store call, through the `redis` breaker. While the breaker is half-open its trial calls
   * run in the background (a read of a key nobody writes, or the login throttle's PING when that
   * started the breaker's one trial loop), not the callers' calls: a store that still hangs
   * then costs a caller nothing (a read bypasses the cache at once, a write's version raise is
   * kept as pending) instead of the call timeout each time the reset timeout runs out. The
   * raises kept meanwhile go as soon as the trials closed the breaker.
   */
  private redis<T>(fn: () => Promise<T>): Promise<T> {
    return this.breakers.get('redis', 'redis').executeOrTrial(() => fn(), this.trials);
  }

  /** one object for every call (a cached read's path allocates nothing for it) */
  private readonly trials = {
    trial: () => this.store.get(PROBE_KEY),
    onClosedByTrials: () => this.afterTrials(),
    // an answer slower than half the call timeout is worth less than the database's
    slowFails: true,
  };

  /**
   * The version raises refused meanwhile (writes made while the trials ran) go as soon as the
   * trials closed the breaker, not on the retry timer's next tick: other instances stop
   * answering the old entry at once.
   */
  private afterTrials(): void {
    if (this.pending.size > 0) void this.pending.retryNow();
  }

  private keys(t: CacheTarget, shardId: string) {
    const ns = cacheNamespace(t.tenantId, shardId);
    return { version: `${ns}:v:${t.version}`, prefix: `${ns}:e:${t.entry}:`, suffix: '' };
  }

  async read<T>(opts: ReadThroughOptions<T>): Promise<CachedRead<T>> {
    const { target, token } = opts;
    const { enabled, epoch, tenantEpochs } = this.config.current().cache;
    if (!enabled) return this.bypass(opts);
    const tenantEpoch = tenantEpochs.size === 0 ? 0 : (tenantEpochs.get(target.tenantId) ?? 0);
    const k = this.keys(target, opts.shardId);
    // a version key's text says its flavour (a MySQL GTID set has `uuid:`); a floor built from it
    // must carry that flavour, or the router cannot parse it and reads the master
    const flavourOf = (version: string) =>
      token?.flavour ?? opts.flavour ?? gtidTextFlavour(versionPosition(version));
    const near = this.near?.lookup(k.version, (v) => `${k.prefix}${v}${k.suffix}`);
    if (
      near &&
      (near.entry.g ?? 0) === epoch &&
      (near.entry.h ?? 0) === tenantEpoch &&
      (!token || this.covers(token.flavour, near.entry.p, token.gtid))
    ) {
      this.nearHits.inc();
      return this.hit(
        opts,
        k,
        near.version,
        near.entry as Entry<T>,
        flavourOf(near.version),
        epoch,
        tenantEpoch,
      );
    }
    const ticket = this.near?.begin(k.version);
    let version: string;
    let raw: string | undefined;
    try {
      ({ version, value: raw } = await this.redis(() =>
        this.store.getVersioned(k.version, k.prefix, k.suffix),
      ));
    } catch (error) {
      this.near?.abandon(ticket);
      this.logger.debug({ err: String(error) }, 'cache read failed; bypassing');
      return this.bypass(opts);
    }
    this.near?.learn(ticket, version);
    // an entry of another epoch is as good as none: its refill replaces it under the same key
    const entry = raw ? this.decode<T>(raw, epoch, tenantEpoch) : undefined;
    if (entry?.x) this.near?.put(`${k.prefix}${version}${k.suffix}`, entry, entry.x);
    const flavour = flavourOf(version);
    if (entry && (!token || this.covers(flavour, entry.p, token.gtid))) {
      return this.hit(opts, k, version, entry, flavour, epoch, tenantEpoch);
    }
    this.results.inc({ result: 'miss' });
    // Read at least at the last write that touched this key, and at the caller's token.
    const floorGtid = this.newer(flavour, versionPosition(version), token?.gtid);
    const floor = floorGtid ? { shardId: opts.shardId, flavour, gtid: floorGtid } : undefined;
    const loaded = await this.fill(opts, k, version, floor, epoch, tenantEpoch);
    return { value: loaded.value, cache: 'MISS', readFrom: loaded.readFrom };
  }

  private hit<T>(
    opts: ReadThroughOptions<T>,
    k: { version: string; prefix: string; suffix: string },
    version: string,
    entry: Entry<T>,
    flavour: ReplicationPosition['flavour'],
    epoch: number,
    tenantEpoch: number,
  ): CachedRead<T> {
    this.results.inc({ result: 'hit' });
    if (this.refreshDue(entry)) {
      // early refresh: one reader renews a hot entry shortly before it expires, so it never
      // expires under load and instances do not stampede the database together
      this.refreshes.inc();
      const position = versionPosition(version);
      const floor = position ? { shardId: opts.shardId, flavour, gtid: position } : undefined;
      void this.fill(opts, k, version, floor, epoch, tenantEpoch).catch(() => {});
    }
    return { value: entry.d, cache: 'HIT', readFrom: entry.s };
  }

  /**
   * Load (single-flight per entry, floor and epoch in this instance) and store the entry under the
   * version it was read for; the stored entry records the floor as the position it includes, and
   * the epochs in force when the read began (a move of either during the load retires it).
   */
  private fill<T>(
    opts: ReadThroughOptions<T>,
    k: { version: string; prefix: string; suffix: string },
    version: string,
    floor: ReplicationPosition | undefined,
    epoch: number,
    tenantEpoch: number,
  ): Promise<{ value: T; readFrom: ReadSource }> {
    const key = `${k.prefix}${version}${k.suffix}|${floor?.gtid ?? ''}|${epoch}|${tenantEpoch}`;
    let shared = this.inflight.get(key) as Promise<{ value: T; readFrom: ReadSource }> | undefined;
    if (shared) return shared;
    this.loads.inc({ entry: opts.target.entry.split(':')[0] ?? 'entry' });
    const loadStartedAt = performance.now();
    shared = opts.load(floor).finally(() => this.inflight.delete(key));
    this.inflight.set(key, shared);
    void shared.then(
      (loaded) => {
        if (opts.cacheable && !opts.cacheable(loaded.value)) return;
        if (this.settling(opts.target.tenantId)) return;
        // read with no version floor: stored only when the read took less than the replication
        // lag limit, so what it lacks is a write at most that old when the key was lost (a write
        // raised and its key lost during a longer load would be missed for a whole TTL: a review)
        if (
          !version &&
          performance.now() - loadStartedAt > this.config.current().replication.maxLagSeconds * 1000
        )
          return;
        const ttl = this.config.current().cache.ttlSeconds;
        const e: Entry<T> = {
          f: ENTRY_FORMAT,
          p: floor?.gtid ?? '',
          s: loaded.readFrom,
          // wall clock: stored in Redis, read by every instance (refreshDue)
          x: Date.now() + ttl * 1000,
          t: ttl * 1000,
          g: epoch,
          ...(tenantEpoch === 0 ? {} : { h: tenantEpoch }),
          d: loaded.value,
        };
        // under '' (the version key was absent) the store makes the mark: the next read learns it
        if (version) this.near?.put(`${k.prefix}${version}${k.suffix}`, e, e.x as number);
        const value = JSON.stringify(e);
        const markTtl = this.absentVersionTtlSeconds();
        this.redis(() =>
          this.store.fillVersioned({
            versionKey: k.version,
            version,
            prefix: k.prefix,
            suffix: k.suffix,
            value,
            ttlSeconds: ttl,
            markTtlSeconds: markTtl,
          }),
        ).catch(() => {});
      },
      () => {},
    );
    return shared;
  }

  /**
   * True for `replication/max_lag_seconds` + 2 s after the epoch, or the tenant's own, moved:
   * what is read then is answered but not cached. A move may stand for a write whose version
   * raise never lands (its writer died holding it, or it is of unknown outcome), so a fill has no
   * floor at that write and may read a replica that has not applied it; once that long has
   * passed, every replica the router still reads from has applied everything committed before
   * the move (its lag is below the limit, probed each second).
   */
  private settling(tenantId: string): boolean {
    const since = Math.max(this.epochSince, this.tenantEpochSince.get(tenantId) ?? Number.NEGATIVE_INFINITY);
    return performance.now() - since < this.settleMs();
  }

  /**
   * How long an absent version key's mark lives from its last fill: past the entries filled under
   * it (each fill, early refreshes included, gives it this again). Twice the entry TTL: one such
   * key per item cached, where only written items had one; a read that caches nothing (a 404)
   * makes none.
   */
  private absentVersionTtlSeconds(): number {
    return 2 * this.config.current().cache.ttlSeconds;
  }

  private settleMs(): number {
    return (this.config.current().replication.maxLagSeconds + 2) * 1000;
  }

  /**
   * A tenant's epoch changed: when it took effect here (as `epochSince`). A move older than
   * twice the settling time no longer matters and is not kept, so the map holds only tenants
   * with recent moves (pruneTenantEpochs drops them once they are that old: once per batch of
   * changes, not per key, so a whole read of thousands of keys is not quadratic).
   */
  private noteTenantEpoch(tenantId: string, now: number): void {
    const value = this.config.current().cache.tenantEpochs.get(tenantId) ?? 0;
    const since = tookEffect(value, now);
    if (value === 0 || now - since >= 2 * this.settleMs()) this.tenantEpochSince.delete(tenantId);
    else this.tenantEpochSince.set(tenantId, since);
  }

  private pruneTenantEpochs(now: number): void {
    const keep = 2 * this.settleMs();
    for (const [id, since] of this.tenantEpochSince)
      if (now - since >= keep) this.tenantEpochSince.delete(id);
  }

  /**
   * In the last EARLY_REFRESH_SHARE of an entry's life, each hit renews it with a probability
   * rising from 0 to 1 (a simple form of probabilistic early expiration, "XFetch").
   */
  private refreshDue(entry: Entry<unknown>): boolean {
    if (!entry.x || !entry.t) return false;
    const window = entry.t * EARLY_REFRESH_SHARE;
    // wall clock: `x` was written by whichever instance filled the entry
    const left = entry.x - Date.now();
    if (left > window) return false;
    return Math.random() < 1 - Math.max(0, left) / window;
  }

  /**
   * After a commit: raise the version keys of everything the write changed to its position, in
   * one call. Never throws; a failed raise is retried in the background, and resolves once the
   * cache epoch moved after it (cache-epoch.ts), or that failed too.
   */
  async invalidate(
    tenantId: string,
    versions: string[],
    position: ReplicationPosition | undefined,
  ): Promise<void> {
    if (!position) return;
    const keys = versions.map(
      (v) => this.keys({ tenantId, version: v, entry: '' }, position.shardId).version,
    );
    this.near?.forget(keys);
    try {
      await this.redis(() =>
        this.store.raisePositions(keys, position.flavour, position.gtid, VERSION_TTL_SECONDS),
      );
    } catch (error) {
      for (const key of keys) this.pending.keep(key, position);
      // once per 10 s while Redis refuses them (an outside check: 3,079 lines in one outage)
      this.deferrals.warn(
        { err: String(error), keys },
        'cache invalidation deferred; moving the cache epoch',
      );
      // a move of the last RECENT_MOVE_MS covers this write too: nothing is cached under it
      // until settling() ends, and what is read then includes every write committed this soon
      // after the move (the replicas read from lag at most max_lag_seconds + 1 s), with 0.5 s
      // to spare for clocks; so steady writes during an outage move it about twice a second
      // (when the epoch in force took effect here: an operator's value is no time, and one
      // beyond the clock, 9e15, read as one, stopped every later move until that date)
      if (performance.now() - this.epochSince >= RECENT_MOVE_MS) await this.epochs?.retire();
    }
  }

  /**
   * After a write of `tenantId` whose outcome is unknown (its COMMIT sent and not confirmed, or a
   * hung write not confirmed stopped): it may have applied at a position nobody knows, so no
   * version key can be raised for it. The tenant's own cache epoch moves instead, so a reader
   * without a token does not take the entry from before it for the answer ("read before
   * retrying", the 503 says) and send the write again; other tenants' entries stay. The global
   * epoch moves instead when this instance has moved too many tenants' epochs in the last second
   * (tenant-epoch-retirers.ts), or without a tenant. Never throws; a move (the tenant's, or the
   * global one) of the last 0.5 s covers it as above. A hung write that applies later than the
   * settling window after this move is not covered: its entries live until the next write of
   * the key or `cache/ttl_seconds`.
   */
  async afterUncertainWrite(tenantId?: string): Promise<void> {
    const now = performance.now();
    if (now - this.epochSince < RECENT_MOVE_MS) return;
    if (tenantId !== undefined && this.tenantEpochs) {
      if (now - (this.tenantEpochSince.get(tenantId) ?? Number.NEGATIVE_INFINITY) < RECENT_MOVE_MS) return;
      const own = this.tenantEpochs.retire(tenantId);
      if (own) return own;
    }
    await this.epochs?.retire();
  }

  /**
   * A Redis that lost every key (restarted without persistence, FLUSHALL) lost the version keys
   * of recent writes too: a reader without a token then fills from a replica with no floor, and a
   * replica that has not applied such a write yet would have its old row cached for the whole
   * TTL, not just the replica lag. Each `storeWatchMs` this looks for the store mark; gone after
   * this instance saw it, the cache epoch moves (every instance drops what it filled meanwhile
   * and caches nothing for max_lag_seconds + 2 s, as after a refused raise). A failed look is
   * no answer (Redis down: reads bypass the cache anyway).
   */
  private async watchStore(): Promise<void> {
    try {
      const present = (await this.redis(() => this.store.get(STORE_MARK_KEY))) !== undefined;
      if (present) {
        this.storeMarked = true;
        return;
      }
      await this.redis(() => this.store.set(STORE_MARK_KEY, '1', STORE_MARK_TTL_SECONDS));
      if (!this.storeMarked) {
        this.storeMarked = true;
        return;
      }
      this.logger.warn(
        { key: STORE_MARK_KEY },
        'Redis lost its keys (restarted or flushed): moving the cache epoch',
      );
      await this.epochs?.retire();
    } catch {
      /* Redis not answering: looked at again on the next tick */
    }
  }

  /**
   * A shard's master history went back (ShardRouter `onHistoryReset`: `RESET MASTER`, a restore
   * from a backup, a new master without the old one's last writes). Its tenants' version keys
   * hold positions that the new history numbers again: a write at a lower sequence number does
   * not raise them (a raise keeps the highest per domain), so an entry cached before the reset
   * stayed current after later writes, also for readers with their own write's token (an outside
   * check: 42 % of token reads stale for 4 minutes, until the sequence passed the old one). Every
   * key of the shard's tenants is deleted (a version key absent is never an entry's: the next
   * fill starts a fresh mark), the raises kept for them are dropped, and the near cache forgets
   * what it holds. Retried every 2 s while Redis refuses it; never throws. Called again while
   * a deletion of the shard runs (a second reset within its SCAN, which may have passed keys
   * filled since), the deletion runs once more when it ends.
   */
  forgetShard(shardId: string): void {
    const match = cacheNamespace('*', shardId);
    const ofShard = (key: string) => key.includes(`}:${shardId}:`);
    this.pending.drop(ofShard);
    this.near?.clear();
    if (this.forgetting.has(shardId)) {
      this.forgetAgain.add(shardId);
      return;
    }
    this.forgetting.add(shardId);
    let failures = 0;
    const attempt = async (): Promise<void> => {
      if (this.closed) return;
      try {
        const removed = await this.store.deleteMatching(`${match}:*`);
        this.near?.clear();
        this.logger.warn(
          { shard: shardId, removed, failedAttempts: failures },
          "the shard's cached entries and versions are deleted: its master's history went back",
        );
        if (this.forgetAgain.delete(shardId)) {
          failures = 0;
          void attempt();
          return;
        }
        this.forgetting.delete(shardId);
      } catch (error) {
        // said once; the success says how many attempts failed
        if (failures++ === 0)
          this.logger.warn(
            { shard: shardId, err: String(error) },
            "could not delete the shard's cached entries after its master's history went back; trying again every 2 s",
          );
        setTimeout(() => void attempt(), 2000).unref();
      }
    };
    void attempt();
  }

  close(): void {
    this.closed = true;
    if (this.storeWatch) clearInterval(this.storeWatch);
    this.pending.stop();
    this.unsubscribe?.();
    this.unsubscribeEpoch();
  }

  private async bypass<T>(opts: ReadThroughOptions<T>): Promise<CachedRead<T>> {
    this.results.inc({ result: 'bypass' });
    const loaded = await opts.load(opts.token);
    return { value: loaded.value, cache: 'BYPASS', readFrom: loaded.readFrom };
  }

  /** the entry, unless it is of another format or was filled under another epoch (or tenant epoch) */
  private decode<T>(raw: string, epoch: number, tenantEpoch: number): Entry<T> | undefined {
    try {
      const e = JSON.parse(raw) as Entry<T>;
      return e.f === ENTRY_FORMAT && (e.g ?? 0) === epoch && (e.h ?? 0) === tenantEpoch ? e : undefined;
    } catch {
      return undefined;
    }
  }

  private covers(flavour: ReplicationPosition['flavour'], have: string, want: string): boolean {
    const a = parseGtid(flavour, have);
    const b = parseGtid(flavour, want);
    return !!a && !!b && gtidContains(a, b);
  }

  /**
   * The later of two positions ('' / undefined = none); when neither contains the other (writes
   * in more than one GTID domain, or MySQL sets of different servers), both: the MariaDB domains'
   * higher seqs, MySQL's two sets joined (a review: the token alone let a replica without the
   * version's write fill the entry under that version).
   */
  private newer(
    flavour: ReplicationPosition['flavour'],
    a: string,
    b: string | undefined,
  ): string | undefined {
    if (!a) return b || undefined;
    if (!b) return a;
    const pa = parseGtid(flavour, a);
    const pb = parseGtid(flavour, b);
    if (!pa || !pb) return b;
    if (gtidContains(pa, pb)) return a;
    if (gtidContains(pb, pa)) return b;
    return flavour === 'mariadb' ? mergePositions(flavour, a, b) : `${a},${b}`;
  }

  /**
   * At shutdown, once no request is left: push the version raises still pending (writes made
   * while Redis was unreachable), which only this process knows, trying for up to `withinMs`
   * past the breaker (it may still be open from the outage; a stopping process sends no other
   * call). Answers how many are left: their entries may then be served to readers without a
   * consistency token until they expire (`cache/ttl_seconds`); a reader with the write's token
   * never gets them (an entry older than a token misses).
   */
  async flushPending(withinMs: number): Promise<number> {
    return this.pending.flush(withinMs);
  }
}
