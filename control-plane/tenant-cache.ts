/**
 * The read cache as `tenants move`, `create` and `remove` touch it: one Redis connection that
 * fails fast, and the deletion of a tenant's keys on one shard or on all. For a move, Redis not
 * answering (at connect, or a command timed out or cut off mid-deletion) is an UnreachableError
 * (exit 2) naming its address, and an error Redis answers (NOPERM, READONLY) a UserError (exit 1);
 * for create and remove (`forgetTenantKeys`) either is a warning: they need etcd only, and what
 * is left expires (`cache/ttl_seconds`).
 */
import { Redis, ReplyError } from 'ioredis';
import { cacheNamespace, tenantKeyPrefix } from '../src/cache/cache-namespace.js';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError, UserError } from './ctl-errors.js';

/**
 * Delete the read cache's keys of the tenant on one shard, or with `shardId` undefined every key
 * of the id (UNLINK, in SCAN pages).
 */
export async function clearCache(
  redis: Redis,
  tenantId: string,
  shardId: string | undefined,
): Promise<number> {
  let cursor = '0';
  let removed = 0;
  const match =
    shardId === undefined ? `${tenantKeyPrefix(tenantId)}*` : `${cacheNamespace(tenantId, shardId)}:*`;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) removed += await redis.unlink(...keys);
  } while (cursor !== '0');
  return removed;
}

/** how long one Redis command of the control plane may take, unless the caller bounds it lower */
export const REDIS_COMMAND_TIMEOUT_MS = 5000;

/**
 * A connection to SHARDGATE_REDIS_URL that answered a PING; it never reconnects nor retries. Each
 * command fails after `commandTimeoutMs` (at most REDIS_COMMAND_TIMEOUT_MS): a move passes its
 * `--wait-ms` bound, since it clears the cache while the tenant is read-only.
 */
export async function connectRedis(
  ctx: CtlContext,
  { commandTimeoutMs = REDIS_COMMAND_TIMEOUT_MS }: { commandTimeoutMs?: number } = {},
): Promise<Redis> {
  const redis = new Redis(ctx.env.SHARDGATE_REDIS_URL, {
    lazyConnect: true,
    connectTimeout: 3000,
    commandTimeout: Math.min(commandTimeoutMs, REDIS_COMMAND_TIMEOUT_MS),
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
    throw redisFailure(ctx, error);
  }
}

/**
 * A failed Redis call of a move, as its one line: Redis not answering (a refused connection, a
 * command timed out, a dropped connection) is an UnreachableError (exit 2); an error Redis
 * answered (ReplyError: NOAUTH, NOPERM, READONLY, …) a UserError (exit 1), Redis being there.
 * Each names Redis's address and the first line of the cause.
 */
export function redisFailure(ctx: CtlContext, error: unknown): UnreachableError | UserError {
  const where = new URL(ctx.env.SHARDGATE_REDIS_URL);
  const cause = error instanceof Error ? error.message : String(error);
  if (error instanceof ReplyError)
    return new UserError(
      `redis at ${where.hostname}:${where.port || 6379} answered: ${cause.split('\n')[0]} (a move clears the tenant's cache entries on the shards it moves between)`,
    );
  return new UnreachableError(
    `redis unreachable at ${where.hostname}:${where.port || 6379}: ${cause.split('\n')[0]} (a move clears the tenant's cache entries on the shards it moves between)`,
  );
}

/**
 * `tenants create` (on the shard it places the tenant on, before the entry is written) and
 * `tenants remove` (every shard, after): delete what a tenant of this id left in the cache. An
 * instance serves a tenant's entries from Redis whatever created them, so without this a tenant
 * created with a removed or moved-away tenant's id, on a shard whose rows of it are gone, was
 * served the earlier tenant's books until they expired. Never throws: Redis not answering is a
 * warning naming what is left. Answers whether the keys were deleted.
 */
export async function forgetTenantKeys(
  ctx: CtlContext,
  tenantId: string,
  shardId?: string,
): Promise<boolean> {
  let redis: Redis | undefined;
  try {
    redis = await connectRedis(ctx);
    const cleared = await clearCache(redis, tenantId, shardId);
    if (cleared > 0)
      ctx.out(
        `deleted ${cleared} cache keys of tenant id ${tenantId}${shardId === undefined ? '' : ` on shard ${shardId}`}`,
      );
    return true;
  } catch (error) {
    ctx.warn(
      `the cache keys of tenant id ${tenantId} could not be deleted (${(error as Error).message.replace(/ \(a move .*\)$/, '')}): what an earlier tenant of this id left cached expires within cache/ttl_seconds`,
    );
    return false;
  } finally {
    redis?.disconnect();
  }
}
