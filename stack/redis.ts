/**
 * The stack's own Redis on :6380 (never the system one on :6379): a cache, so no persistence
 * (`--save ""`, no AOF); its working directory is `.stack/redis`.
 *
 * Memory is bounded (REDIS_MAXMEMORY) with `volatile-ttl`: without a bound, anyone can fill it
 * with distinct cached reads (a forged list cursor is a new entry each time) until the machine
 * runs out. docker/compose.yml starts its Redis with the same policy and, by default, the same
 * bound (test/docker-compose.test.ts checks both).
 *
 * Why volatile-ttl. Every key shardgate writes has a TTL (cache entries `cache/ttl_seconds`,
 * default 60 s; login-throttle counters their 15-minute window; version keys 24 h from their last
 * raise, src/cache/read-cache.ts), and volatile-ttl evicts the key nearest its expiry: the
 * short-lived entries go first, a version key only when nothing expiring sooner is at hand. (An
 * LRU/LFU policy would evict a version key that is raised once and rarely read before anything.)
 * It is sampled, not exact: each eviction takes the soonest-expiring key among
 * `maxmemory-samples` random keys with a TTL and a pool of up to 16 earlier candidates; hence 10
 * samples instead of 5 (redis.conf: 10 approximates the exact order very closely, for more CPU).
 *
 * Why evicting a version key does not serve an older entry. A reader that finds the version key
 * absent reads the entry stored under "no version". That entry was filled either
 * (a) after the version key vanished: read with no version floor, so from the master or a replica
 *     within `replication/max_lag_seconds` (5 s) of it; it includes the write the version key
 *     recorded unless that write is younger than that lag; or
 * (b) before the version key was first raised: then it is at most `cache/ttl_seconds` old, and
 *     the version key was raised less than that long ago.
 * So harm needs the eviction of a version key raised within the last minute, i.e. with more than
 * 24 h − 60 s to live. volatile-ttl takes it only when no candidate of that eviction expires
 * sooner: not one cache entry, throttle counter or version key raised earlier among ≥ 10 random
 * keys. Young version keys come only from committed writes (new ones only from writes to items
 * not written for a day), and the chance per eviction is about their share of the keys to the
 * 10th power: 1e-6 at a quarter of the keys, 1e-3 at half.
 * Should it happen all the same, the cache's contract still holds: an entry records the position
 * its read included at least (its floor), and a reader whose consistency token that does not
 * include misses and reads at its token; a reader without a token sees a value at most the entry
 * TTL old (case b) or the replica lag old (case a), the bound the cache already accepts when a
 * version raise is lost (read-cache.ts, MAX_PENDING).
 *
 * What evicting a throttle counter costs: the account's next attempts come before its window
 * ends. volatile-ttl reaches a counter only when it expires sooner than the cache entries sampled
 * beside it (≤ 60 s left while entries are in memory), so at most the end of a window is lost.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { startProcess } from './process-manager.js';
import { topology } from './topology.js';

/** the stack Redis' memory bound (docker/compose.yml: SHARDGATE_REDIS_MAXMEMORY, same default) */
export const REDIS_MAXMEMORY = '256mb';
export const REDIS_MAXMEMORY_POLICY = 'volatile-ttl';
export const REDIS_MAXMEMORY_SAMPLES = 10;

/** the command line of the stack's Redis (exported for the tests, which start one of their own) */
export function redisArgs({
  port = topology.redis.port,
  host = topology.host,
  dir,
  maxmemory = REDIS_MAXMEMORY,
}: {
  port?: number;
  host?: string;
  dir: string;
  maxmemory?: string;
}): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    host,
    '--save',
    '',
    '--appendonly',
    'no',
    '--maxmemory',
    maxmemory,
    '--maxmemory-policy',
    REDIS_MAXMEMORY_POLICY,
    '--maxmemory-samples',
    String(REDIS_MAXMEMORY_SAMPLES),
    '--dir',
    dir,
    '--daemonize',
    'no',
  ];
}

export function startRedis(): number {
  const dir = join(STATE_DIR, 'redis');
  mkdirSync(dir, { recursive: true });
  return startProcess({
    name: topology.redis.name,
    command: binary('redis-server'),
    args: redisArgs({ dir }),
  });
}
