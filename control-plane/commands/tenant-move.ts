/**
 * `tenants move <id> --to <shard> [--overwrite] [--keep-source] [--wait-ms n]`: move a tenant's
 * rows to another shard and point its directory entry there, with no write lost and no read
 * served from a place that lacks the tenant's rows.
 *
 * The steps, each printed as it happens:
 * 1. Checks, before anything changes: the entry is valid, the target is another known shard,
 *    both masters answer, the target holds no row of the tenant (an earlier `tenants remove` or
 *    `--keep-source` left some: `--overwrite` replaces them), and Redis answers.
 * 2. An `active` tenant turns `readonly` (writes answer 423; reads go on), and the command waits
 *    until every registered instance has applied that revision: from then on no instance starts
 *    a write. (A `readonly` or `suspended` tenant keeps its status throughout.)
 * 3. The copy: the source's rows read with shared locks (a write still in flight commits first),
 *    written on the target in one transaction. The target's replicas are waited for until they
 *    have applied it, and the read cache's entries of the tenant on the target shard (left by an
 *    earlier stay there) are deleted.
 * 4. The switch: the entry names the target (status still `readonly`); every instance applies it.
 *    The source's rows are read again and compared with the copy: a write that began before step
 *    2 and committed after the copy makes them differ, and the copy is made again (at most
 *    COPY_ATTEMPTS times in all).
 * 5. The status goes back to what it was; the source's rows are deleted (not with
 *    `--keep-source`). Outbox rows stay where they were written: the email worker delivers them
 *    from there.
 * Read-your-writes holds throughout: every write the tenant made is in the copy, and the target's
 * replicas have applied it before any instance reads there, so a consistency token of the old
 * shard needs no floor (the API ignores a token of another shard than the tenant's).
 *
 * Failure modes: an error before the switch undoes the move (entry back to the source and its
 * old status, the target's copy deleted) and says so; the tenant then serves from the source as
 * before. An error after the switch leaves the tenant on the target, readonly, with both copies in
 * place, and names the command that finishes the job. A change of the tenant's entry by someone
 * else while the command runs stops it the same way. etcd unreachable exits 2, a shard server or
 * Redis unreachable exits 2, a refused step exits 1.
 */
import { EtcdLockFailedError, type Lock } from 'etcd3';
import { Redis } from 'ioredis';
import type { Connection } from 'mysql2/promise';
import { cacheNamespace } from '../../src/cache/cache-namespace.js';
import type { ShardConfig, TenantEntry } from '../../src/config/schema.js';
import { commitChanges, loadState, planChanges, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UnreachableError, UserError } from '../ctl-errors.js';
import {
  addressOf,
  connectShardServer,
  copyTenant,
  countTenantRows,
  deleteTenantRows,
  describeCounts,
  differingTables,
  digestTenant,
  replicaApplied,
  type TableDigests,
} from '../tenant-rows.js';

export interface MoveOptions {
  to: string;
  overwrite?: boolean;
  keepSource?: boolean;
  /** how long to wait for every instance to apply a step, and for each replica to apply the copy */
  waitMs?: number;
}

const COPY_ATTEMPTS = 3;
const MOVE_LOCK_TTL_SECONDS = 10;
const DEFAULT_WAIT_MS = 10_000;

type Placement = Pick<TenantEntry, 'shard' | 'status'>;

const countsOf = (d: TableDigests) =>
  Object.fromEntries(Object.entries(d).map(([t, v]) => [t, v.rows])) as Record<keyof TableDigests, number>;

/**
 * Write the tenant's entry as `next` (its other fields kept), provided etcd still holds `expected`;
 * answers the revision written.
 */
async function putPlacement(
  ctx: CtlContext,
  id: string,
  expected: Placement,
  next: Placement,
): Promise<number> {
  const read = await readPrefix(ctx);
  const key = `tenants/${id}`;
  const raw = read.entries.get(key);
  const now = loadState(read).snapshot.tenants.get(id);
  if (raw === undefined || !now || now.shard !== expected.shard || now.status !== expected.status) {
    throw new UserError(
      `tenant ${id}'s entry changed while it was being moved (now ${raw ?? 'absent'}, expected shard ${expected.shard}, status ${expected.status})`,
    );
  }
  const value = JSON.stringify({ ...(JSON.parse(raw) as object), shard: next.shard, status: next.status });
  return commitChanges(ctx, read, planChanges(read, new Map([[key, value]])));
}

/** Wait until every instance registered in etcd reports a config revision of at least `revision`. */
async function waitForInstances(ctx: CtlContext, revision: number, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const instances = loadState(await readPrefix(ctx)).snapshot.instances;
    const behind = [...instances].filter(([, i]) => i.configRevision < revision);
    if (behind.length === 0) return instances.size;
    if (Date.now() >= deadline) {
      throw new UserError(
        `instance${behind.length > 1 ? 's' : ''} ${behind.map(([id, i]) => `${id} (at revision ${i.configRevision})`).join(', ')} did not apply revision ${revision} within ${waitMs} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Wait until every replica of the shard has applied `position`; an unreachable one is warned of. */
async function waitForReplicas(
  ctx: CtlContext,
  shardId: string,
  shard: ShardConfig,
  position: string,
  waitMs: number,
): Promise<void> {
  const applied: string[] = [];
  for (const replica of shard.replicas) {
    let connection: Connection;
    try {
      connection = await connectShardServer(ctx.env, shardId, shard, replica);
    } catch (error) {
      if (!(error instanceof UnreachableError)) throw error;
      // a replica that is down serves nothing; when it is back it applies the copy first in order
      ctx.warn(
        `${error.message}: going on without it (the instances do not read from a replica they cannot reach, and take it back only once it has caught up, the copy included)`,
      );
      continue;
    }
    try {
      if (!(await replicaApplied(connection, position, waitMs))) {
        throw new UserError(
          `replica ${addressOf(replica)} of shard ${shardId} did not apply the copy (${position}) within ${waitMs} ms`,
        );
      }
      applied.push(addressOf(replica));
    } finally {
      await connection.end().catch(() => {});
    }
  }
  if (applied.length > 0) ctx.out(`shard ${shardId}'s replicas applied the copy: ${applied.join(', ')}`);
}

/** Delete the read cache's keys of the tenant on one shard (UNLINK, in SCAN pages). */
async function clearCache(redis: Redis, tenantId: string, shardId: string): Promise<number> {
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

async function connectRedis(ctx: CtlContext): Promise<Redis> {
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

export async function moveTenant(ctx: CtlContext, id: string, opts: MoveOptions): Promise<void> {
  // the entry is read under the lock: one read before it could be a finished move's old shard
  const lock = await acquireMoveLock(ctx, id);
  try {
    await checkAndMove(ctx, id, opts);
  } finally {
    await lock.release().catch(() => {});
  }
}

async function checkAndMove(ctx: CtlContext, id: string, opts: MoveOptions): Promise<void> {
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const read = await readPrefix(ctx);
  const state = loadState(read);
  const problem = state.rejected.find((r) => r.key === `tenants/${id}`);
  if (problem) {
    throw new UserError(
      `tenant ${id} has an entry the API instances reject (${problem.reason}): make it valid before moving it`,
    );
  }
  const entry = state.snapshot.tenants.get(id);
  if (!entry) throw new UserError(`unknown tenant ${id}`);
  const from = entry.shard;
  const to = opts.to;
  const target = state.snapshot.shards.get(to);
  if (!target) {
    throw new UserError(
      `unknown shard ${to} (known: ${[...state.snapshot.shards.keys()].sort().join(', ')})`,
    );
  }
  if (from === to) throw new UserError(`tenant ${id} is on shard ${to} already; nothing to move`);
  const source = state.snapshot.shards.get(from)!;
  await moveLocked(ctx, id, opts, { entry, from, to, source, target, waitMs });
}

/**
 * One move of a tenant at a time: an etcd lock (a key under a lease, etcd3's Lock) beside the
 * config prefix, not in it (`/shardgate.locks/tenant-move/<id>`), so no instance watches it. The
 * lease ends 10 s after the command dies, freeing the tenant for the next move.
 */
async function acquireMoveLock(ctx: CtlContext, id: string): Promise<Lock> {
  const key = `${ctx.prefix.replace(/\/$/, '')}.locks/tenant-move/${id}`;
  const lock = ctx.etcd.lock(key).ttl(MOVE_LOCK_TTL_SECONDS);
  const got = await ctx.call(async () => {
    try {
      await lock.acquire();
      return true;
    } catch (error) {
      if (error instanceof EtcdLockFailedError) return false;
      throw error;
    }
  });
  if (!got) {
    throw new UserError(
      `another tenants move of ${id} is running (etcd lock ${key}); wait for it to end, or ${MOVE_LOCK_TTL_SECONDS} s after it was killed`,
    );
  }
  return lock;
}

async function moveLocked(
  ctx: CtlContext,
  id: string,
  opts: MoveOptions,
  {
    entry,
    from,
    to,
    source,
    target,
    waitMs,
  }: {
    entry: TenantEntry;
    from: string;
    to: string;
    source: ShardConfig;
    target: ShardConfig;
    waitMs: number;
  },
): Promise<void> {
  const redis = await connectRedis(ctx);
  let sourceDb: Connection | undefined;
  let targetDb: Connection | undefined;
  try {
    sourceDb = await connectShardServer(ctx.env, from, source, source.master);
    targetDb = await connectShardServer(ctx.env, to, target, target.master);
    const stale = await countTenantRows(targetDb, id);
    if (stale > 0 && !opts.overwrite) {
      throw new UserError(
        `shard ${to} holds ${stale} rows of tenant ${id} already (left by \`tenants remove\`, \`--keep-source\` or an interrupted move; no instance serves them while the directory names ${from}): re-run with --overwrite to replace them with the tenant's rows from ${from}`,
      );
    }
    await runMove(ctx, { id, entry, from, to, source, target, sourceDb, targetDb, redis, waitMs, opts });
  } finally {
    await sourceDb?.end().catch(() => {});
    await targetDb?.end().catch(() => {});
    redis.disconnect();
  }
}

interface MovePlan {
  id: string;
  entry: TenantEntry;
  from: string;
  to: string;
  source: ShardConfig;
  target: ShardConfig;
  sourceDb: Connection;
  targetDb: Connection;
  redis: Redis;
  waitMs: number;
  opts: MoveOptions;
}

async function runMove(ctx: CtlContext, p: MovePlan): Promise<void> {
  const { id, entry, from, to, waitMs } = p;
  const original: Placement = { shard: from, status: entry.status };
  // only an active tenant writes; readonly and suspended ones keep what they have
  const moving: Placement = { shard: from, status: entry.status === 'active' ? 'readonly' : entry.status };
  const started = Date.now();
  const done: Undo = { statusWritten: false, copied: false, switchSent: false };
  let copy: { digests: TableDigests; position: string };
  try {
    if (moving.status !== original.status) {
      const revision = await putPlacement(ctx, id, original, moving);
      done.statusWritten = true;
      const n = await waitForInstances(ctx, revision, waitMs);
      ctx.out(
        `tenant ${id}: ${original.status} -> ${moving.status} on shard ${from} while it moves (writes answer 423); revision ${revision}, applied by ${n} instance${n === 1 ? '' : 's'}`,
      );
    }
    copy = await copyTenant(p.sourceDb, p.targetDb, id);
    done.copied = true;
    ctx.out(`copied from shard ${from} to shard ${to}: ${describeCounts(countsOf(copy.digests))}`);
    await waitForReplicas(ctx, to, p.target, copy.position, waitMs);
    const cleared = await clearCache(p.redis, id, to);
    if (cleared > 0)
      ctx.out(`deleted ${cleared} cache keys of tenant ${id} on shard ${to} (from an earlier stay there)`);
  } catch (error) {
    await undo(ctx, p, moving, original, done, error);
    throw error;
  }

  const switched: Placement = { shard: to, status: moving.status };
  let revision: number;
  try {
    // from here the put may land even when it answers an error (etcd froze mid-call): the undo
    // then finds the entry on the new shard and keeps both copies
    done.switchSent = true;
    revision = await putPlacement(ctx, id, moving, switched);
  } catch (error) {
    await undo(ctx, p, moving, original, done, error);
    throw error;
  }
  const finish = `finish with \`shardgate-ctl tenants set-status ${id} ${original.status}\`${p.opts.keepSource ? '' : ` and delete its rows on ${from} by hand`}`;
  try {
    const n = await waitForInstances(ctx, revision, waitMs);
    ctx.out(
      `tenant ${id}: shard ${from} -> ${to}; revision ${revision}, applied by ${n} instance${n === 1 ? '' : 's'}`,
    );
    for (let attempt = 1; ; attempt++) {
      const now = await digestTenant(p.sourceDb, id);
      const changed = differingTables(copy.digests, now);
      if (changed.length === 0) break;
      if (attempt >= COPY_ATTEMPTS) {
        throw new UserError(
          `the rows of tenant ${id} on shard ${from} kept changing after ${COPY_ATTEMPTS} copies (${changed.join(', ')}): is something other than shardgate writing them?`,
        );
      }
      ctx.out(
        `rows of ${changed.join(', ')} changed on shard ${from} during the copy (a write that was in flight): copying again`,
      );
      copy = await copyTenant(p.sourceDb, p.targetDb, id);
      await waitForReplicas(ctx, to, p.target, copy.position, waitMs);
    }
    ctx.out(`the rows on shard ${from} are unchanged since the copy`);
    if (original.status !== switched.status) {
      const last = await putPlacement(ctx, id, switched, { shard: to, status: original.status });
      ctx.out(
        `tenant ${id}: ${switched.status} -> ${original.status} on shard ${to}; revision ${last}; writes were refused for ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    }
  } catch (error) {
    const message = `${error instanceof Error ? error.message : String(error)}; tenant ${id} is on shard ${to}, ${switched.status}, with its rows on both shards: ${finish}`;
    throw error instanceof UnreachableError ? new UnreachableError(message) : new UserError(message);
  }

  if (original.status === 'readonly') {
    ctx.out(
      `tenant ${id} stays readonly, as it was when the move started (if an interrupted move left it so: shardgate-ctl tenants set-status ${id} active)`,
    );
  }
  if (p.opts.keepSource) {
    ctx.out(
      `the rows of tenant ${id} stay on shard ${from} (--keep-source); a move back there needs --overwrite`,
    );
    return;
  }
  const deleted = await deleteTenantRows(p.sourceDb, id);
  // the cache keys of the old shard are left to expire (entries by cache/ttl_seconds, versions
  // within a day): no instance reads them, and a move back deletes them before it switches
  ctx.out(
    `deleted the rows of tenant ${id} on shard ${from}: ${describeCounts(deleted)}; its outbox rows stay there until the email worker has delivered them`,
  );
}

/** what an undo has to take back */
interface Undo {
  statusWritten: boolean;
  copied: boolean;
  /** the switch to the new shard was sent: it may have landed, whatever it answered */
  switchSent: boolean;
}

/**
 * Before the switch is known to have landed: the entry goes back to the source with its old
 * status FIRST (guarded: only from what this move wrote), and only once the entry is known to
 * name the source is the copy on the new shard deleted. An entry that cannot be put back, or
 * that names the new shard (the switch landed), keeps both copies: the line says where it points.
 */
async function undo(
  ctx: CtlContext,
  p: MovePlan,
  moving: Placement,
  original: Placement,
  done: Undo,
  cause: unknown,
): Promise<void> {
  const steps: string[] = [];
  let onSource = false;
  let problem: string | undefined;
  try {
    if (done.statusWritten || done.switchSent) {
      await putPlacement(ctx, p.id, moving, original);
      if (done.statusWritten) steps.push(`tenant ${p.id} back to ${original.status} on shard ${p.from}`);
      onSource = true;
    } else {
      onSource = loadState(await readPrefix(ctx)).snapshot.tenants.get(p.id)?.shard === p.from;
    }
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  if (done.copied) {
    if (onSource) {
      try {
        await deleteTenantRows(p.targetDb, p.id);
        steps.push(`the copy on shard ${p.to} deleted`);
      } catch (error) {
        steps.push(
          `the copy on shard ${p.to} could not be deleted (${(error as Error).message}); no instance reads it`,
        );
      }
    } else {
      steps.push(`the copy on shard ${p.to} kept`);
    }
  }
  if (problem === undefined) {
    ctx.warn(`move of tenant ${p.id} undone: ${steps.join(', ') || 'nothing had changed'}`);
    return;
  }
  let where = 'unknown (etcd did not answer)';
  try {
    const now = loadState(await readPrefix(ctx)).snapshot.tenants.get(p.id);
    if (now) where = `shard ${now.shard}, ${now.status}`;
  } catch {
    /* etcd still unreachable */
  }
  ctx.warn(
    `move of tenant ${p.id} failed (${cause instanceof Error ? cause.message : String(cause)}) and could not be undone (${problem}): its entry now names ${where}; its rows are on shard ${p.from}${done.copied ? ` and on shard ${p.to}` : ''}, nothing was deleted. Check \`shardgate-ctl tenants show ${p.id}\`: if it names ${p.to}, finish with \`shardgate-ctl tenants set-status ${p.id} ${original.status}\`; if it names ${p.from}, run the move again with --overwrite`,
  );
}
