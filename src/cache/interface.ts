/**
 * The key-value store behind the read cache. Small on purpose: the read cache (read-cache.ts)
 * holds the rules (namespacing, versions, consistency, single-flight); adapters only move bytes.
 * Adapters: `redis.ts` (ioredis, fail-fast), `memory.ts` (unit tests, embedded mode).
 *
 * Every method may throw `DependencyError` (store down or slow); callers treat that as a miss.
 */
/**
 * The first character of a version that is no replication position: the mark fillVersioned puts
 * in an absent version key. A raise replaces it whole; it is never a read floor.
 */
export const ABSENT_VERSION_MARK = '~';

/** whether `version` is a replication position ('' = none known) rather than an absent key's mark */
export function versionPosition(version: string): string {
  return version.startsWith(ABSENT_VERSION_MARK) ? '' : version;
}

/** what CacheStore.fillVersioned stores, and under which version */
export interface VersionedFill {
  versionKey: string;
  /** the version the value was read for ('' = the key was absent) */
  version: string;
  prefix: string;
  suffix: string;
  value: string;
  ttlSeconds: number;
  markTtlSeconds: number;
}

export interface CacheStore {
  get(key: string): Promise<string | undefined>;
  /**
   * In one round trip, a read only: the version stored at `versionKey` and the value at
   * `prefix + version + suffix`; an absent version key answers '' and no value (nothing is ever
   * stored under "no version", so a version key that vanishes, evicted or deleted by hand, cannot
   * bring back an entry filled before a later write).
   */
  getVersioned(
    versionKey: string,
    prefix: string,
    suffix: string,
  ): Promise<{ version: string; value: string | undefined }>;
  /**
   * Stores `value` at `prefix + version + suffix` for `ttlSeconds` when `versionKey` still holds
   * `version`, in one round trip. `version` '' (the key was absent when read): the key is first
   * set, if still absent, to a fresh mark (ABSENT_VERSION_MARK and the store's clock: never a
   * value the key held before) living `markTtlSeconds`, and the value stored under it. A mark
   * found with less than `ttlSeconds` left is given `markTtlSeconds` again. Answers whether it
   * stored.
   */
  fillVersioned(fill: VersionedFill): Promise<boolean>;
  set(key: string, value: string, ttlSeconds: number): Promise<void>;
  del(keys: string[]): Promise<void>;
  /**
   * Raise the replication position stored at each of `keys` to include `position`, all in one
   * round trip (never lowers one: concurrent writers' bumps merge, per GTID domain, into the
   * highest of each). `ttlSeconds` bounds how long an idle version key lives. The keys must be of
   * one tenant (one Redis Cluster slot: the `{tenant}` hash tag).
   */
  raisePositions(
    keys: readonly string[],
    flavour: 'mariadb' | 'mysql',
    position: string,
    ttlSeconds: number,
  ): Promise<void>;
  /**
   * Deletes every key matching `pattern` (Redis glob: `*` any characters), a page of keys at a
   * time; answers how many. Not atomic: a key written meanwhile may stay or go.
   */
  deleteMatching(pattern: string): Promise<number>;
  close(): Promise<void>;
  /** server-assisted invalidation of the keys this store has read, when the store offers it */
  readonly tracking?: KeyTracking;
}

/**
 * Invalidation messages for keys read through a CacheStore (Redis client-side caching). It lets
 * an instance keep values in memory (near-cache.ts) and drop each one when the store's copy
 * changes.
 *
 * Contract: while `live()` is true, every change of a key that was read through the store after
 * the tracking became live (its current `epoch`) is announced to the listeners within a bound the
 * adapter states (Redis: its heartbeat, 1 s) after the store made it; a `null` list means "all
 * keys". Announcements come on their own connection: not ordered with the store's replies to
 * this instance, nor with its replies to other instances (a reader elsewhere may hear of a write
 * after the writer has its answer).
 * When tracking is lost (a connection closed, or the store stopped answering the heartbeat) some
 * announcements may be lost with it: `live()` turns false and `epoch` changes, and everything
 * learnt under an earlier epoch must be forgotten.
 */
export interface KeyTracking {
  readonly epoch: number;
  live(): boolean;
  onInvalidate(listener: (keys: readonly string[] | null) => void): void;
  /** switch tracking on (a near cache is in use) or off (the store tracks nothing); idempotent */
  activate(on: boolean): void;
  close(): void;
}
