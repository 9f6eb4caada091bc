/**
 * The key-value store behind the read cache. Small on purpose: the read cache (read-cache.ts)
 * holds the rules (namespacing, versions, consistency, single-flight); adapters only move bytes.
 * Adapters: `redis.ts` (ioredis, fail-fast), `memory.ts` (unit tests, embedded mode).
 *
 * Every method may throw `DependencyError` (store down or slow); callers treat that as a miss.
 */
export interface CacheStore {
  get(key: string): Promise<string | undefined>;
  /**
   * In one round trip: the version stored at `versionKey` ('' when absent) and the value at
   * `prefix + version + suffix`.
   */
  getVersioned(
    versionKey: string,
    prefix: string,
    suffix: string,
  ): Promise<{ version: string; value: string | undefined }>;
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
  close(): Promise<void>;
}
