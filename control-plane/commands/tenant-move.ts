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
 *
 * A move that dies (SIGKILL, a lost machine, an undo that could not reach etcd) leaves its record
 * (move-record.ts). The same command run again finds it and finishes the move from where the
 * tenant's entry says it got; `--to <source>` takes back one that died before its switch. See
 * resumeMove.
 */
import { EtcdLockFailedError, type Lock } from 'etcd3';
import { Redis } from 'ioredis';
import type { Connection } from 'mysql2/promise';
import { cacheNamespace } from '../../src/cache/cache-namespace.js';
import type { ShardConfig, TenantEntry } from '../../src/config/schema.js';
import { loadState, planChanges, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UnreachableError, UserError } from '../ctl-errors.js';
import {
  deleteMoveRecord,
  entryHistory,
  type MoveRecord,
  moveLockKey,
  moveRecordKey,
  movingStatus,
  readMoveRecord,
  writeMoveRecord,
} from '../move-record.js';
import { sameDatabase } from '../same-database.js';
import {
  addressOf,
  connectShardServer,
  copyTenant,
  countTenantRows,
  databaseIdentity,
  deleteTenantRows,
  describeCounts,
  differingTables,
  digestTenant,
  replicaApplied,
  type TableDigests,
} from '../tenant-rows.js';
import { commitFromRead } from '../write-keys.js';

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
  // another key written meanwhile (a tenant created, a weight set) is read again, not fatal
  const { revision } = await commitFromRead(ctx, (read) => {
    const key = `tenants/${id}`;
    const raw = read.entries.get(key);
    const now = loadState(read).snapshot.tenants.get(id);
    if (raw === undefined || !now || now.shard !== expected.shard || now.status !== expected.status) {
      throw new UserError(
        `tenant ${id}'s entry changed while it was being moved (now ${raw ?? 'absent'}, expected shard ${expected.shard}, status ${expected.status})`,
      );
    }
    const value = JSON.stringify({ ...(JSON.parse(raw) as object), shard: next.shard, status: next.status });
    return planChanges(read, new Map([[key, value]]));
  });
  return revision;
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
  // the entry and the move record are read under the lock: one read before it could be a
  // finished move's old shard, or the record of a move that is still running
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
  const shards = state.snapshot.shards;
  const to = opts.to;
  if (!shards.has(to)) {
    throw new UserError(`unknown shard ${to} (known: ${[...shards.keys()].sort().join(', ')})`);
  }
  const record = await readMoveRecord(ctx, id);
  if (record) {
    // the instances report the revision of the last change under the prefix they applied: the
    // entry's own (the header's may be a later write outside the prefix, such as the lock)
    const revision = read.mods.get(`tenants/${id}`) ?? read.revision;
    await resumeMove(ctx, id, opts, { entry, record, shards, waitMs, revision });
    return;
  }
  const from = entry.shard;
  if (from === to) throw new UserError(`tenant ${id} is on shard ${to} already; nothing to move`);
  const source = shards.get(from)!;
  const target = shards.get(to)!;
  if (sameDatabase(source, target)) {
    // a copy onto itself, then "deleting the old rows", would delete the only ones
    throw new UserError(
      `shards ${from} and ${to} name the same database (${target.master.host}:${target.master.port} ${target.database}): the tenant's rows are there already; point tenants/${id} at ${to} with \`etcdctl put\` or \`config apply\` instead`,
    );
  }
  await moveLocked(ctx, id, opts, {
    entry,
    original: entry.status,
    from,
    to,
    source,
    target,
    waitMs,
    startRevision: read.revision,
  });
}

/**
 * One move of a tenant at a time: an etcd lock (a key under a lease, etcd3's Lock) beside the
 * config prefix, not in it (`/shardgate.locks/tenant-move/<id>`), so no instance watches it. The
 * lease ends 10 s after the command dies, freeing the tenant for the next move.
 */
async function acquireMoveLock(ctx: CtlContext, id: string): Promise<Lock> {
  const key = moveLockKey(ctx.prefix, id);
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

/**
 * A move of the tenant died before its end (its record is still there, and we hold the lock).
 * Where the tenant's entry points says how far it got:
 * - the source: the switch never landed. `--to <target>` runs the move again from the start
 *   (the rows on the target are the dead move's copy, which no instance reads: replaced);
 *   `--to <source>` takes it back (the tenant's status before it, the copy deleted).
 * - the target: the switch landed. `--to <target>` finishes it: the rows are compared with the
 *   source again (copied again if a write in flight changed them), the status restored and the
 *   source's rows deleted. The tenant is on its new shard already, so nothing else is offered.
 * - elsewhere: someone changed the entry by hand; nothing is guessed.
 */
async function resumeMove(
  ctx: CtlContext,
  id: string,
  opts: MoveOptions,
  {
    entry,
    record,
    shards,
    waitMs,
    revision,
  }: {
    entry: TenantEntry;
    record: MoveRecord;
    shards: ReadonlyMap<string, ShardConfig>;
    waitMs: number;
    revision: number;
  },
): Promise<void> {
  const key = moveRecordKey(ctx.prefix, id);
  const what = `an interrupted move of tenant ${id} from shard ${record.from} to shard ${record.to} (started ${record.startedAt})`;
  const source = shards.get(record.from);
  const target = shards.get(record.to);
  if (!source || !target) {
    throw new UserError(
      `${what} names a shard etcd no longer holds (${!source ? record.from : record.to}): check the tenant's rows on its shards, then delete ${key} with etcdctl`,
    );
  }
  const moving = movingStatus(record.status);
  const history = await entryHistory(ctx, id, revision, record.startRevision);
  if (entry.shard === record.from) {
    // pointed back by hand after the switch: the target may hold writes the source lacks (or,
    // once verified, the only complete copy): neither copying over it nor deleting it is safe
    if (history === 'unknown' || history.some((v) => v.shard === record.to)) {
      throw new UserError(
        record.verified
          ? `${what} had switched the tenant to shard ${record.to}, verified the rows there and was deleting those on ${record.from} when it stopped; its entry was pointed back at ${record.from} since. Shard ${record.to} holds the complete copy: point tenants/${id} at ${record.to} again (\`etcdctl put\`) and run \`shardgate-ctl tenants move ${id} --to ${record.to}\` to finish; nothing changed`
          : `${what} ${history === 'unknown' ? 'may have switched' : 'had switched'} the tenant to shard ${record.to} (etcd's history ${history === 'unknown' ? 'cannot tell' : 'says so'}), and its entry names ${record.from} now: both shards may hold writes the other lacks. Compare the tenant's rows on the two shards, then delete ${key} with etcdctl; nothing changed`,
      );
    }
    if (opts.to === record.from) {
      await takeBack(ctx, id, { entry, record, target, moving });
      return;
    }
    if (opts.to !== record.to) {
      throw new UserError(
        `${what} is recorded (${key}): finish it with --to ${record.to}, or take it back with --to ${record.from}, before moving the tenant elsewhere`,
      );
    }
    ctx.out(`resuming ${what}`);
    // an operator may have set the status by hand since: then that is the one to end with
    const original = entry.status === moving ? record.status : entry.status;
    await moveLocked(
      ctx,
      id,
      { ...opts, overwrite: true, keepSource: opts.keepSource || record.keepSource },
      { entry, original, from: record.from, to: record.to, source, target, waitMs, record },
    );
    return;
  }
  if (entry.shard !== record.to) {
    throw new UserError(
      `${what} is recorded (${key}), but the tenant's entry names shard ${entry.shard}: check its rows on ${record.from} and ${record.to}, then delete ${key} with etcdctl`,
    );
  }
  if (opts.to !== record.to) {
    throw new UserError(
      `${what} had switched the tenant to shard ${record.to}: finish it first with \`shardgate-ctl tenants move ${id} --to ${record.to}\``,
    );
  }
  ctx.out(`finishing ${what}: the tenant's entry names shard ${record.to} already`);
  await withShardConnections(ctx, { from: record.from, to: record.to, source, target }, async (c) => {
    const p: MovePlan = {
      id,
      entry,
      record,
      original: record.status,
      from: record.from,
      to: record.to,
      source,
      target,
      waitMs,
      opts: { ...opts, keepSource: opts.keepSource || record.keepSource },
      ...c,
    };
    const switched: Placement = { shard: record.to, status: entry.status };
    // the entry as the switch wrote it, unchanged since: its only version on the target
    const untouched =
      history !== 'unknown' &&
      history.filter((v) => v.shard === record.to).length === 1 &&
      entry.status === moving;
    if (record.verified) {
      ctx.out(
        `its rows on shard ${record.to} were verified before it stopped; what is left is deleting them on ${record.from}`,
      );
      await waitForInstances(ctx, revision, waitMs);
    } else if (untouched) {
      // readonly (or suspended) on the target ever since the switch: its rows are the copy, and
      // a difference can only be a write in flight on the source, copied again
      await finishSwitch(ctx, p, {
        revision,
        switched,
        copy: await digestTenant(c.targetDb, id),
        started: Date.parse(record.startedAt) || undefined,
        resumed: true,
      });
    } else {
      // changed by hand since the switch (a status set, perhaps writes taken on the target): the
      // source is no longer the reference; its rows go only if they are the target's exactly
      const changed = differingTables(await digestTenant(c.targetDb, id), await digestTenant(c.sourceDb, id));
      if (changed.length > 0) {
        throw new UserError(
          `${what}: tenant ${id}'s entry was changed since the switch (now ${entry.status} on ${record.to}${history === 'unknown' ? ", or etcd's history cannot tell" : ''}), and its rows of ${changed.join(', ')} differ between the shards: nothing deleted. Compare them; delete the rows on ${record.from} by hand if ${record.to} has them all, then delete ${key} with etcdctl`,
        );
      }
      ctx.out(
        `tenant ${id}'s entry was changed since the switch (now ${entry.status}); its rows on both shards are the same, so it keeps that status and the rows on ${record.from} go`,
      );
      await waitForInstances(ctx, revision, waitMs);
      p.original = entry.status;
    }
    await dropSource(ctx, p);
  });
}

/** `--to <source>` after a move died before its switch: status back, the copy deleted. */
async function takeBack(
  ctx: CtlContext,
  id: string,
  {
    entry,
    record,
    target,
    moving,
  }: { entry: TenantEntry; record: MoveRecord; target: ShardConfig; moving: TenantEntry['status'] },
): Promise<void> {
  if (entry.status === moving && moving !== record.status) {
    const revision = await putPlacement(
      ctx,
      id,
      { shard: record.from, status: moving },
      { shard: record.from, status: record.status },
    );
    ctx.out(`tenant ${id}: ${moving} -> ${record.status} on shard ${record.from}; revision ${revision}`);
  }
  const targetDb = await connectShardServer(ctx.env, record.to, target, target.master);
  try {
    // the entry names the source (read under the lock): no instance reads these rows
    const deleted = await deleteTenantRows(targetDb, id);
    ctx.out(`deleted the interrupted move's copy on shard ${record.to}: ${describeCounts(deleted)}`);
  } finally {
    await targetDb.end().catch(() => {});
  }
  await deleteMoveRecord(ctx, id);
  ctx.out(`the interrupted move of tenant ${id} is taken back; it stays on shard ${record.from}`);
}

interface ShardConnections {
  sourceDb: Connection;
  targetDb: Connection;
  redis: Redis;
}

async function withShardConnections(
  ctx: CtlContext,
  { from, to, source, target }: { from: string; to: string; source: ShardConfig; target: ShardConfig },
  body: (c: ShardConnections) => Promise<void>,
): Promise<void> {
  const redis = await connectRedis(ctx);
  let sourceDb: Connection | undefined;
  let targetDb: Connection | undefined;
  try {
    sourceDb = await connectShardServer(ctx.env, from, source, source.master);
    targetDb = await connectShardServer(ctx.env, to, target, target.master);
    await body({ sourceDb, targetDb, redis });
  } finally {
    await sourceDb?.end().catch(() => {});
    await targetDb?.end().catch(() => {});
    redis.disconnect();
  }
}

interface MoveStart {
  entry: TenantEntry;
  /** the status the tenant ends with: its status before the move */
  original: TenantEntry['status'];
  from: string;
  to: string;
  source: ShardConfig;
  target: ShardConfig;
  waitMs: number;
  /** the record of the dead move this one resumes; a new move writes its own */
  record?: MoveRecord;
  /** a new move: the etcd revision read before its first change, kept in its record */
  startRevision?: number;
}

async function moveLocked(ctx: CtlContext, id: string, opts: MoveOptions, start: MoveStart): Promise<void> {
  await withShardConnections(ctx, start, async (c) => {
    // the same database under two addresses (a host name and its IP): the copy would meet the
    // rows themselves, under locks the copy's own reads hold
    if ((await databaseIdentity(c.sourceDb)) === (await databaseIdentity(c.targetDb))) {
      throw new UserError(
        `shards ${start.from} and ${start.to} reach the same database (the server says so, whatever their addresses): the tenant's rows are there already; point tenants/${id} at ${start.to} with \`etcdctl put\` or \`config apply\` instead`,
      );
    }
    const stale = await countTenantRows(c.targetDb, id);
    if (stale > 0 && !opts.overwrite) {
      throw new UserError(
        `shard ${start.to} holds ${stale} rows of tenant ${id} already (left by \`tenants remove\` or \`--keep-source\`; no instance serves them while the directory names ${start.from}): re-run with --overwrite to replace them with the tenant's rows from ${start.from}`,
      );
    }
    await runMove(ctx, { id, ...start, ...c, opts });
  });
}

interface MovePlan extends MoveStart, ShardConnections {
  id: string;
  opts: MoveOptions;
}

async function runMove(ctx: CtlContext, p: MovePlan): Promise<void> {
  const { id, entry, from, to, waitMs } = p;
  const now: Placement = { shard: from, status: entry.status };
  const original: Placement = { shard: from, status: p.original };
  // only an active tenant writes; readonly and suspended ones keep what they have
  const moving: Placement = { shard: from, status: movingStatus(p.original) };
  // a resumed move: writes were refused since the dead one began
  const started = p.record ? Date.parse(p.record.startedAt) || Date.now() : Date.now();
  const done: Undo = { statusWritten: false, copied: false, switchSent: false };
  let copy: { digests: TableDigests; position: string };
  try {
    if (!p.record) {
      p.record = {
        from,
        to,
        status: p.original,
        keepSource: Boolean(p.opts.keepSource),
        startedAt: new Date(started).toISOString(),
        ...(p.startRevision === undefined ? {} : { startRevision: p.startRevision }),
      };
      await writeMoveRecord(ctx, id, p.record);
    }
    if (moving.status !== now.status) {
      const revision = await putPlacement(ctx, id, now, moving);
      done.statusWritten = true;
      const n = await waitForInstances(ctx, revision, waitMs);
      ctx.out(
        `tenant ${id}: ${now.status} -> ${moving.status} on shard ${from} while it moves (writes answer 423); revision ${revision}, applied by ${n} instance${n === 1 ? '' : 's'}`,
      );
    } else if (moving.status !== original.status) {
      done.statusWritten = true; // a resumed move: the dead one wrote it
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
  await finishSwitch(ctx, p, { revision, switched, copy: copy.digests, started });
  await dropSource(ctx, p);
}

/**
 * After the switch: every instance applies it; the source's rows are compared with the copy (a
 * write that began before the readonly step and committed after the copy makes them differ: the
 * copy is made again, at most COPY_ATTEMPTS times in all); then the tenant's status before the
 * move is restored. A failure leaves the tenant on the target, still readonly, its rows on both
 * shards and the record in place: running the same move again finishes it.
 */
async function finishSwitch(
  ctx: CtlContext,
  p: MovePlan,
  {
    revision,
    switched,
    copy,
    started,
    resumed = false,
  }: { revision: number; switched: Placement; copy: TableDigests; started?: number; resumed?: boolean },
): Promise<void> {
  const { id, from, to, waitMs } = p;
  try {
    const n = await waitForInstances(ctx, revision, waitMs);
    const applied = `revision ${revision}, applied by ${n} instance${n === 1 ? '' : 's'}`;
    ctx.out(
      resumed
        ? `tenant ${id}: on shard ${to} since the interrupted move's switch; ${applied}`
        : `tenant ${id}: shard ${from} -> ${to}; ${applied}`,
    );
    let digests = copy;
    for (let attempt = 1; ; attempt++) {
      const now = await digestTenant(p.sourceDb, id);
      const changed = differingTables(digests, now);
      if (changed.length === 0) break;
      if (attempt >= COPY_ATTEMPTS) {
        throw new UserError(
          `the rows of tenant ${id} on shard ${from} kept changing after ${COPY_ATTEMPTS} copies (${changed.join(', ')}): is something other than shardgate writing them?`,
        );
      }
      ctx.out(
        `rows of ${changed.join(', ')} changed on shard ${from} during the copy (a write that was in flight): copying again`,
      );
      const again = await copyTenant(p.sourceDb, p.targetDb, id);
      await waitForReplicas(ctx, to, p.target, again.position, waitMs);
      digests = again.digests;
    }
    ctx.out(`the rows on shard ${from} are unchanged since the copy`);
    if (p.original !== switched.status) {
      const last = await putPlacement(ctx, id, switched, { shard: to, status: p.original });
      const refused =
        started === undefined
          ? ''
          : `; writes were refused for ${((Date.now() - started) / 1000).toFixed(1)} s`;
      ctx.out(`tenant ${id}: ${switched.status} -> ${p.original} on shard ${to}; revision ${last}${refused}`);
    }
  } catch (error) {
    const message = `${error instanceof Error ? error.message : String(error)}; tenant ${id} is on shard ${to}, ${switched.status}, with its rows on both shards: run \`shardgate-ctl tenants move ${id} --to ${to}\` again to finish the move`;
    throw error instanceof UnreachableError ? new UnreachableError(message) : new UserError(message);
  }
}

/**
 * The move's last step: the source's rows deleted (unless kept), then the record. The record is
 * marked `verified` first: the deletion goes in pages, and a move that dies half-way through it
 * must not take the rest of the source for a newer state of the tenant and copy it again.
 */
async function dropSource(ctx: CtlContext, p: MovePlan): Promise<void> {
  const { id, from } = p;
  if (p.record && !p.record.verified) {
    p.record = { ...p.record, verified: true };
    await writeMoveRecord(ctx, id, p.record);
  }
  if (p.original === 'readonly') {
    ctx.out(`tenant ${id} stays readonly, as it was when the move started`);
  }
  if (p.opts.keepSource) {
    ctx.out(
      `the rows of tenant ${id} stay on shard ${from} (--keep-source); a move back there needs --overwrite`,
    );
  } else {
    const deleted = await deleteTenantRows(p.sourceDb, id);
    // the cache keys of the old shard are left to expire (entries by cache/ttl_seconds, versions
    // within a day): no instance reads them, and a move back deletes them before it switches
    ctx.out(
      `deleted the rows of tenant ${id} on shard ${from}: ${describeCounts(deleted)}; its outbox rows stay there until the email worker has delivered them`,
    );
  }
  try {
    await deleteMoveRecord(ctx, id);
  } catch (error) {
    ctx.warn(
      `the move is done, but its record ${moveRecordKey(ctx.prefix, id)} could not be deleted (${(error as Error).message}): the next move of ${id} finishes at once, or delete it with etcdctl`,
    );
  }
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
  if (problem === undefined && onSource) {
    try {
      await deleteMoveRecord(ctx, p.id);
    } catch (error) {
      problem = `its record ${moveRecordKey(ctx.prefix, p.id)} stays: ${(error as Error).message}`;
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
    `move of tenant ${p.id} failed (${cause instanceof Error ? cause.message : String(cause)}) and could not be undone (${problem}): its entry now names ${where}; its rows are on shard ${p.from}${done.copied ? ` and on shard ${p.to}` : ''}, nothing was deleted. Run \`shardgate-ctl tenants move ${p.id} --to ${p.to}\` again to finish it, or \`--to ${p.from}\` to take it back (before the switch only)`,
  );
}
