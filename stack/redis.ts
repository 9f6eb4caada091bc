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
 * raise, a mark twice the entry TTL from its last fill, src/cache/read-cache.ts), and volatile-ttl evicts the key nearest its expiry: the
 * short-lived entries go first, a version key only when nothing expiring sooner is at hand. (An
 * LRU/LFU policy would evict a version key that is raised once and rarely read before anything.)
 * It is sampled, not exact: each eviction takes the soonest-expiring key among
 * `maxmemory-samples` random keys with a TTL and a pool of up to 16 earlier candidates; hence 10
 * samples instead of 5 (redis.conf: 10 approximates the exact order very closely, for more CPU).
 *
 * Why evicting a version key does not serve an older entry. Nothing is stored under "no
 * version": a reader that finds the version key absent misses, and its fill sets the key to a
 * fresh mark (`~` and Redis' clock, never a value the key held before; src/cache/redis.ts) and
 * stores under that. So after an eviction (or a deletion by hand) every entry filled before is
 * out of reach, as after a write. What is filled next is read with no version floor: from the
 * master or a replica within `replication/max_lag_seconds` (5 s) of it, so it lacks the write
 * the version key recorded only when that write is younger than that lag, and is then served for
 * up to its TTL to readers without a token; a reader whose consistency token is newer than an
 * entry's floor misses and reads at its token all the same. (Before, the reader read the entry
 * stored under "no version", which the item's first reads had filled: an outside check deleted a
 * book's version key after a PATCH and was served the title from before it for ~50 s, until that
 * entry's TTL.) volatile-ttl reaches a version key raised by a write (24 h) only when no candidate
 * of that eviction expires sooner; a mark lives twice the entry TTL from its item's last fill.
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
