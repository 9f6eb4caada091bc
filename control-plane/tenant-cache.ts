/**
 * The read cache as `tenants move` touches it: one Redis connection that fails fast, and the
 * deletion of a tenant's keys on one shard. Redis not answering is an UnreachableError (exit 2)
 * naming its address; a failure mid-deletion is thrown as it is.
 */
import { Redis } from 'ioredis';
import { cacheNamespace } from '../src/cache/cache-namespace.js';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError } from './ctl-errors.js';

/** Delete the read cache's keys of the tenant on one shard (UNLINK, in SCAN pages). */
export async function clearCache(redis: Redis, tenantId: string, shardId: string): Promise<number> {
  let cursor = '0';
  let removed = 0;
  const match = `${cacheNamespace(tenantId, shardId)}:*`;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

/** A connection to SHARDGATE_REDIS_URL that answered a PING; it never reconnects nor retries. */
export async function connectRedis(ctx: CtlContext): Promise<Redis> {
  const url = ctx.env.SHARDGATE_REDIS_URL;
  const redis = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 3000,
    commandTimeout: 5000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    const where = new URL(url);
    throw new UnreachableError(
      `redis unreachable at ${where.hostname}:${where.port || 6379}: ${(error as Error).message.split('\n')[0]} (a move clears the tenant's cache entries on the target shard)`,
    );
  }
}
