/**
 * One run of a `tenants move` once its checks passed (tenant-move.ts has the steps): readonly,
 * copy, switch, compare, status back, source deleted. An error before the switch is undone
 * (undo); one after it leaves the tenant on the target, readonly, both copies and the move's
 * record in place, and names the command that finishes the job. A shard server or Redis
 * unreachable is an UnreachableError (exit 2), a refused step a UserError (exit 1); an undone
 * move's error is ONE line: what failed, then what the undo did and left.
 *
 * No call to a shard server waits unboundedly while the tenant is read-only: the masters'
 * connections answer each statement within statementBoundMs(--wait-ms) or count as not
 * answering (shard-server.ts), and the replica waits are bounded by --wait-ms (move-steps.ts).
 * A frozen master (SIGSTOP) once held a tenant read-only until it was resumed.
 */
import type { Redis } from 'ioredis';
import type { Connection, RowDataPacket } from 'mysql2/promise';
import type { ShardConfig, TenantEntry } from '../src/config/schema.js';
import { migrationJournal } from '../src/db/migrations-folder.js';
import { pendingMigrations } from '../src/db/pending-migrations.js';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import {
  deleteMoveRecord,
  type MoveRecord,
  MoveRecordGoneError,
  moveRecordKey,
  movingStatus,
  whileRecordIs,
  writeMoveRecord,
} from './move-record.js';
import {
  checkTargetReplicas,
  type Placement,
  putPlacement,
  statementBoundMs,
  waitForInstances,
  waitForReplicas,
  withMoveMarkKept,
} from './move-steps.js';
import { loadState, readPrefix } from './prefix-read.js';
import { removalRecordKey, updateRemovalRecord } from './removal-record.js';
import { NO_SUCH_TABLE_ERRNO } from './schema-state.js';
import { clearCache, connectRedis, redisFailure } from './tenant-cache.js';
import {
  connectShardServer,
  copyTenant,
  countTenantRows,
  databaseIdentity,
  deleteTenantRows,
  describeCounts,
  differingTables,
  digestTenant,
  masterPosition,
  type TableDigests,
} from './tenant-rows.js';

export interface MoveOptions {
  to: string;
  overwrite?: boolean;
  keepSource?: boolean;
  /**
   * how long to wait for every instance to apply a step, for each replica to apply the copy, and
   * (statementBoundMs: at least 1 s) for a shard server to answer one statement
   */
  waitMs?: number;
}

/** how long a target replica may take to apply its master's position before a move starts */
const REPLICA_CHECK_MS = 2000;

/** how often the rows are copied in all before a move gives up (finishSwitch) */
const COPY_ATTEMPTS = 3;

const countsOf = (d: TableDigests) =>
  Object.fromEntries(Object.entries(d).map(([t, v]) => [t, v.rows])) as Record<keyof TableDigests, number>;

interface ShardConnections {
  sourceDb: Connection;
  targetDb: Connection;
  redis: Redis;
}

/**
 * Run `body` with Redis, the source's master and the target's master connected, in that order
 * (the first that does not answer stops it: an UnreachableError); all are closed when it ends,
 * whatever happens. Each statement on the masters is bounded by statementBoundMs(waitMs).
 */
export async function withShardConnections(
  ctx: CtlContext,
  {
    from,
    to,
    source,
    target,
    waitMs,
  }: { from: string; to: string; source: ShardConfig; target: ShardConfig; waitMs: number },
  body: (c: ShardConnections) => Promise<void>,
): Promise<void> {
  // the cache is cleared while the tenant is read-only: Redis gets the shard servers' bound
  const redis = await connectRedis(ctx, { commandTimeoutMs: statementBoundMs(waitMs) });
  const bounds = { statementTimeoutMs: statementBoundMs(waitMs) };
  let sourceDb: Connection | undefined;
  let targetDb: Connection | undefined;
  try {
    sourceDb = await connectShardServer(ctx.env, from, source, source.master, bounds);
    targetDb = await connectShardServer(ctx.env, to, target, target.master, bounds);
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

/** what `npm run migrate` recorded on the connection's database (drizzle's `created_at` of each); undefined when it has no record (never migrated) */
async function recordedMigrations(connection: Connection): Promise<number[] | undefined> {
  try {
    const [rows] = await connection.query<RowDataPacket[]>('SELECT created_at FROM `__drizzle_migrations`');
    return rows.map((r) => Number(r.created_at));
  } catch (error) {
    if ((error as { errno?: number }).errno === NO_SUCH_TABLE_ERRNO) return undefined;
    throw error;
  }
}

/**
 * The move, under its lock: refused when the two shards reach one database, or when the target
 * holds rows of the tenant already (unless --overwrite); then runMove.
 */
export async function moveLocked(
  ctx: CtlContext,
  id: string,
  opts: MoveOptions,
  start: MoveStart,
): Promise<void> {
  await withShardConnections(ctx, start, async (c) => {
    // the same database under two addresses (a host name and its IP): the copy would meet the
    // rows themselves, under locks the copy's own reads hold
    if ((await databaseIdentity(c.sourceDb)) === (await databaseIdentity(c.targetDb))) {
      throw new UserError(
        `shards ${start.from} and ${start.to} reach the same database (the server says so, whatever their addresses): the tenant's rows are there already; point tenants/${id} at ${start.to} with \`etcdctl put\` or \`config apply\` instead`,
      );
    }
    // a target never migrated, or behind this build: one line, as `tenants create` says it
    // (before, a stack trace; a target behind failed later, in the copy)
    // (a new move only: a resumed one copied there already, and must be able to finish or take
    // back what its tenant is in the middle of whatever this CLI's build is)
    if (!start.record) {
      const recorded = await recordedMigrations(c.targetDb);
      const journal = migrationJournal();
      const pending = recorded && journal ? pendingMigrations(journal, recorded).pending : [];
      if (recorded === undefined || pending.length > 0)
        throw new UserError(
          `shard ${start.to} ${recorded === undefined ? 'has no schema' : `lacks ${pending.length} of this build's ${journal?.length} migrations (the first ${pending[0]?.tag})`}: bring it up to date first with \`npm run migrate -- --shard ${start.to}\`; nothing changed`,
        );
    }
    const stale = await countTenantRows(c.targetDb, id);
    if (stale > 0 && !opts.overwrite) {
      throw new UserError(
        `shard ${start.to} holds ${stale} rows of tenant ${id} already (left by \`tenants remove\` or \`--keep-source\`; no instance serves them while the directory names ${start.from}): re-run with --overwrite to replace them with the tenant's rows from ${start.from}`,
      );
    }
    // a new move only: a resumed one finishes or takes back what its tenant is in the middle of
    if (!start.record) {
      const masterNow = await masterPosition(c.targetDb);
      await checkTargetReplicas(
        ctx,
        start.to,
        start.target,
        masterNow,
        Math.min(start.waitMs, REPLICA_CHECK_MS),
      );
    }
    await withMoveMarkKept(ctx, id, () => runMove(ctx, { id, ...start, ...c, opts }));
  });
}

export interface MovePlan extends MoveStart, ShardConnections {
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
  const done: Undo = { statusWritten: false, copy: 'none', switchSent: false };
  let copy: { digests: TableDigests; position: string };
  // since when writes are refused: this move's own readonly, or, when a dead move's is still in
  // force, at most since that one began (an outside check: a resumed move whose tenant had been
  // set active again in between reported 16.0 s refused, for about 1.5 s)
  let refused = { since: started, atMost: Boolean(p.record) };
  if (!p.record) {
    const record: MoveRecord = {
      from,
      to,
      status: p.original,
      keepSource: Boolean(p.opts.keepSource),
      startedAt: new Date(started).toISOString(),
      ...(p.startRevision === undefined ? {} : { startRevision: p.startRevision }),
    };
    try {
      await writeMoveRecord(ctx, id, record, { create: true });
    } catch (error) {
      // another move's record, written since this one read none (this one was stopped past its
      // lock): nothing of this move changed anything, and the record is the other's to keep.
      // Before, the undo deleted it, and that move could then neither write its record nor be
      // resumed (a review)
      if (error instanceof MoveRecordGoneError) throw error;
      // not answered: it may have landed; the undo deletes it, once the entry names the source
      p.record = record;
      throw await undone(ctx, p, moving, original, done, error);
    }
    p.record = record;
  }
  try {
    if (moving.status !== now.status) {
      refused = { since: Date.now(), atMost: false };
      const revision = await putPlacement(ctx, id, now, moving);
      done.statusWritten = true;
      const n = await waitForInstances(ctx, revision, waitMs, id);
      ctx.out(
        `tenant ${id}: ${now.status} -> ${moving.status} on shard ${from} while it moves (writes answer 423); revision ${revision}, applied by ${n} instance${n === 1 ? '' : 's'}`,
      );
    } else if (moving.status !== original.status) {
      done.statusWritten = true; // a resumed move: the dead one wrote it
    }
    copy = await copyTenant(p.sourceDb, p.targetDb, id, { onCommitSent: () => (done.copy = 'maybe') });
    done.copy = 'made';
    ctx.out(`copied from shard ${from} to shard ${to}: ${describeCounts(countsOf(copy.digests))}`);
    await waitForReplicas(ctx, to, p.target, copy.position, waitMs);
    const cleared = await clearCache(p.redis, id, to).catch((error: unknown) => {
      throw redisFailure(ctx, error);
    });
    if (cleared > 0)
      ctx.out(`deleted ${cleared} cache keys of tenant ${id} on shard ${to} (from an earlier stay there)`);
  } catch (error) {
    throw await undone(ctx, p, moving, original, done, error);
  }

  const switched: Placement = { shard: to, status: moving.status };
  let revision: number;
  try {
    // from here the put may land even when it answers an error (etcd froze mid-call): the undo
    // then finds the entry on the new shard and keeps both copies
    done.switchSent = true;
    revision = await putPlacement(ctx, id, moving, switched);
  } catch (error) {
    throw await undone(ctx, p, moving, original, done, error);
  }
  await finishSwitch(ctx, p, {
    revision,
    switched,
    copy: copy.digests,
    started: refused.since,
    refusedAtMost: refused.atMost,
  });
  await dropSource(ctx, p);
}

/**
 * After the switch: every instance applies it; the source's rows are compared with the copy (a
 * write that began before the readonly step and committed after the copy makes them differ: the
 * copy is made again, at most COPY_ATTEMPTS times in all); then the tenant's status before the
 * move is restored. A failure leaves the tenant on the target, still readonly, its rows on both
 * shards and the record in place: running the same move again finishes it.
 */
export async function finishSwitch(
  ctx: CtlContext,
  p: MovePlan,
  {
    revision,
    switched,
    copy,
    started,
    resumed = false,
    refusedAtMost = resumed,
  }: {
    revision: number;
    switched: Placement;
    copy: TableDigests;
    /** since when writes are refused; `refusedAtMost`: at most since then (a dead move began it) */
    started?: number;
    resumed?: boolean;
    refusedAtMost?: boolean;
  },
): Promise<void> {
  const { id, from, to, waitMs } = p;
  try {
    const n = await waitForInstances(ctx, revision, waitMs, id);
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
    // recorded before the status changes: a move killed between the two is finished by a re-run
    // (the status restored then, the source deleted), not refused as an entry changed by hand
    await markVerified(ctx, p);
    if (p.original !== switched.status) {
      const last = await putPlacement(ctx, id, switched, { shard: to, status: p.original });
      const seconds = started === undefined ? '' : ((Date.now() - started) / 1000).toFixed(1);
      // a resumed move knows only when the dead one began, not when its readonly took effect
      const refused =
        started === undefined
          ? ''
          : refusedAtMost
            ? `; writes were refused for at most ${seconds} s (since the interrupted move began)`
            : `; writes were refused for ${seconds} s`;
      ctx.out(`tenant ${id}: ${switched.status} -> ${p.original} on shard ${to}; revision ${last}${refused}`);
    }
  } catch (error) {
    const cause = error instanceof Error ? error.message : String(error);
    const now = await entryNow(ctx, id);
    if (error instanceof MoveRecordGoneError || now.absent) {
      // taken by another command (a removal) while this move was stopped: nothing to finish
      throw new UserError(`${cause}; ${leftAfterTakeover(id, now, [from, to])}`);
    }
    // the entry as it is now: a `config apply` may have set the status meanwhile (an outside
    // check read "readonly" of a tenant made active so)
    const message = `${cause}; tenant ${id} is on ${now.text ?? `shard ${to}, ${switched.status}`}, with its rows on both shards: run \`shardgate-ctl tenants move ${id} --to ${to}\` again to finish the move`;
    throw error instanceof UnreachableError ? new UnreachableError(message) : new UserError(message);
  }
}

/**
 * The tenant's entry now, in words (`shard shard-2, readonly`); `absent` when etcd answered that
 * there is none; neither when etcd did not answer.
 */
async function entryNow(ctx: CtlContext, id: string): Promise<{ text?: string; absent?: boolean }> {
  // tried twice, a second apart: the first call after the command was stopped for a while can
  // time out on the connection gRPC kept (seen after a 14 s SIGSTOP), while etcd answers the next
  for (let attempt = 1; ; attempt++) {
    try {
      const now = loadState(await readPrefix(ctx)).snapshot.tenants.get(id);
      return now ? { text: `shard ${now.shard}, ${now.status}` } : { absent: true };
    } catch {
      if (attempt >= 2) return {};
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

/** what a move taken over by another command leaves, and what to do with it */
function leftAfterTakeover(id: string, now: { text?: string; absent?: boolean }, shards: string[]): string {
  const deletes = shards
    .map((s) => `\`shardgate-ctl tenants delete-rows ${id} --shard ${s} --yes\``)
    .join(' and ');
  if (now.absent)
    return `tenant ${id} has no entry now (removed while this move ran): its rows may be on shards ${shards.join(' and ')}, which no instance serves; delete them with ${deletes}`;
  return `its entry now names ${now.text ?? 'what etcd did not say (it did not answer)'}; its rows may be on shards ${shards.join(' and ')}: check the tenant (\`tenants show ${id}\`), then delete the rows on the shard its entry does not name with \`tenants delete-rows\``;
}

/**
 * Deletes the target's removal record while the move's record is `ours` (whileRecordIs): false
 * when it is not. An etcd failure stops the move before it deletes any row (an UnreachableError
 * saying to re-run): that check is the one a command stopped past its lock needs, and its first
 * etcd call after the stop is the one likely to time out (a review: counted as done, the source's
 * rows were deleted unchecked).
 */
async function voidTargetRemoval(ctx: CtlContext, p: MovePlan, ours: MoveRecord): Promise<boolean> {
  const key = removalRecordKey(ctx.prefix, p.id, p.to);
  try {
    return await whileRecordIs(ctx, p.id, ours, ctx.etcd.delete().key(key));
  } catch (error) {
    if (!(error instanceof UnreachableError)) throw error;
    throw new UnreachableError(
      `${error.message}; tenant ${p.id} is on shard ${p.to}, its copy verified, and its rows on shard ${p.from} are not deleted: run \`shardgate-ctl tenants move ${p.id} --to ${p.to}\` again to finish`,
    );
  }
}

/** the record says the copy was verified: only the status and the source's deletion are left */
async function markVerified(ctx: CtlContext, p: MovePlan): Promise<void> {
  if (!p.record || p.record.verified) return;
  const verified = { ...p.record, verified: true };
  await writeMoveRecord(ctx, p.id, verified, { replacing: p.record });
  p.record = verified;
}

/**
 * The move's last step: the source's rows deleted (unless kept), then the record. The record is
 * marked `verified` first: the deletion goes in pages, and a move that dies half-way through it
 * must not take the rest of the source for a newer state of the tenant and copy it again.
 */
export async function dropSource(ctx: CtlContext, p: MovePlan): Promise<void> {
  const { id, from } = p;
  await markVerified(ctx, p);
  if (p.original === 'readonly') {
    ctx.out(`tenant ${id} stays readonly, as it was when the move started`);
  }
  // the target's rows are the tenant's now: an earlier removal's record there is void. Only while
  // this move's record is as it wrote it: a command that took the tenant while this one was
  // stopped past its lock (`tenants remove`) recorded the rows on both shards, and they must stay
  // recorded and undeleted (a review: a move resumed then erased the target's record)
  if (p.record && !(await voidTargetRemoval(ctx, p, p.record))) {
    const now = await entryNow(ctx, id);
    throw new MoveRecordGoneError(
      `the record of this move of tenant ${id} (${moveRecordKey(ctx.prefix, id)}) was deleted or rewritten while it ran (another command took the tenant once this move's lock had lapsed: the move was stopped for over 10 s); this move writes and deletes nothing more: ${leftAfterTakeover(id, now, [from, p.to])}`,
    );
  }
  if (p.opts.keepSource) {
    ctx.out(
      `the rows of tenant ${id} stay on shard ${from} (--keep-source); a move back there needs --overwrite`,
    );
    // a tenant created later with this id on that shard would get them back (removal-record.ts)
    await updateRemovalRecord(ctx, id, from, 'present');
  } else {
    let deleted: Awaited<ReturnType<typeof deleteTenantRows>>;
    try {
      deleted = await deleteTenantRows(p.sourceDb, id);
    } catch (error) {
      // the tenant is on its new shard already; the record (verified) stays for the re-run
      if (!(error instanceof UnreachableError)) throw error;
      throw new UnreachableError(
        `${error.message}; tenant ${id} is on shard ${p.to}, ${p.original}, but its rows on shard ${from} are not all deleted: run \`shardgate-ctl tenants move ${id} --to ${p.to}\` again to delete them`,
      );
    }
    await updateRemovalRecord(ctx, id, from, undefined);
    ctx.out(
      `deleted the rows of tenant ${id} on shard ${from}: ${describeCounts(deleted)}; its outbox rows stay there until the email worker has delivered them`,
    );
    // the old shard's cache keys go with its rows: no instance reads them while the tenant is
    // elsewhere, but a tenant created later with this id on that shard (no rows left there, so
    // `tenants create` lets it) would be served them until they expire
    try {
      const cleared = await clearCache(p.redis, id, from);
      if (cleared > 0) ctx.out(`deleted ${cleared} cache keys of tenant ${id} on shard ${from}`);
    } catch (error) {
      ctx.warn(
        `the cache keys of tenant ${id} on shard ${from} could not be deleted (${(error as Error).message}); they expire within cache/ttl_seconds (entries) and a day (versions)`,
      );
    }
  }
  try {
    // always there: a new move writes its record before any step, a resumed one read it
    const outcome = p.record ? await deleteMoveRecord(ctx, id, p.record) : 'deleted';
    if (outcome === 'rewritten')
      ctx.warn(
        `the move is done, but its record ${moveRecordKey(ctx.prefix, id)} was rewritten by another command meanwhile (this one was stopped past its lock), and stays: \`tenants show ${id}\` says what it holds`,
      );
    else if (outcome === 'absent')
      ctx.warn(
        `the move is done, but its record ${moveRecordKey(ctx.prefix, id)} was deleted by another command meanwhile (\`tenants remove\` deletes it with the entry): \`tenants show ${id}\` says whether the tenant is still there`,
      );
  } catch (error) {
    ctx.warn(
      `the move is done, but its record ${moveRecordKey(ctx.prefix, id)} could not be deleted (${(error as Error).message}): the next move of ${id} finishes at once, or delete it with etcdctl`,
    );
  }
}

/** what an undo has to take back */
interface Undo {
  statusWritten: boolean;
  /**
   * what the target holds of this move's copy: nothing; `maybe` the whole copy (its COMMIT was
   * sent, and the target failed before it answered: killed, or frozen, at the COMMIT); the copy
   */
  copy: 'none' | 'maybe' | 'made';
  /** the switch to the new shard was sent: it may have landed, whatever it answered */
  switchSent: boolean;
}

/**
 * The error a move that failed before its switch ends with, once undone (undo): a UserError or an
 * UnreachableError is given, as ONE line, what failed and then what the undo did and left (an
 * outside check had the undo's line, then a stack trace, exit 1, for a target master killed mid-
 * copy); any other error (a bug) is thrown as it was, after the undo's line.
 */
async function undone(
  ctx: CtlContext,
  p: MovePlan,
  moving: Placement,
  original: Placement,
  done: Undo,
  cause: unknown,
): Promise<unknown> {
  const outcome = await undo(ctx, p, moving, original, done);
  if (!(cause instanceof UserError || cause instanceof UnreachableError)) {
    ctx.warn(outcome);
    return cause;
  }
  const message = `${cause.message}; ${outcome}`;
  return cause instanceof UnreachableError ? new UnreachableError(message) : new UserError(message);
}

/**
 * Before the switch is known to have landed: the entry goes back to the source with its old
 * status FIRST (guarded: only from what this move wrote), and only once the entry is known to
 * name the source is the copy on the new shard deleted. An entry that cannot be put back, or
 * that names the new shard (the switch landed), keeps both copies: the outcome says where it
 * points. The move's record is deleted only when nothing is left: a copy on the target that could
 * not be deleted (its master killed or frozen) keeps it, so the next move of the tenant knows the
 * rows there for this move's copy (and replaces them, or `--to <source>` deletes them) instead of
 * taking them for rows left by `tenants remove` (an outside check: the next move was refused,
 * naming that wrong cause, and needed --overwrite). Answers the outcome, in words.
 */
async function undo(
  ctx: CtlContext,
  p: MovePlan,
  moving: Placement,
  original: Placement,
  done: Undo,
): Promise<string> {
  const steps: string[] = [];
  const record = moveRecordKey(ctx.prefix, p.id);
  let onSource = false;
  let copyLeft = false;
  let problem: string | undefined;
  try {
    if (done.statusWritten || done.switchSent) {
      await putPlacementRetried(ctx, p.id, moving, original);
      if (done.statusWritten) steps.push(`tenant ${p.id} back to ${original.status} on shard ${p.from}`);
      onSource = true;
    } else {
      // a readonly or suspended tenant's move writes no status: the entry as it is now
      const entry = loadState(await readPrefix(ctx)).snapshot.tenants.get(p.id);
      onSource = entry?.shard === p.from;
      // removed while this move was stopped past its lock: said, with the rows left and how to
      // clear them, not "undone: the copy kept" (a review)
      if (!entry) problem = 'the tenant was removed meanwhile';
    }
  } catch (error) {
    problem = error instanceof Error ? error.message : String(error);
  }
  if (done.copy !== 'none') {
    const copy =
      done.copy === 'made' ? `the copy on shard ${p.to}` : `the copy on shard ${p.to}, if its COMMIT landed,`;
    if (onSource) {
      try {
        await deleteTenantRows(p.targetDb, p.id);
        steps.push(`${copy} deleted`);
      } catch (error) {
        copyLeft = true;
        steps.push(
          `${copy} could not be deleted (${(error as Error).message}); no instance reads it, and the move's record ${record} stays: \`shardgate-ctl tenants move ${p.id} --to ${p.to}\` replaces it, \`--to ${p.from}\` deletes it`,
        );
      }
    } else {
      steps.push(`${copy} kept`);
    }
  }
  if (problem === undefined && onSource && !copyLeft) {
    try {
      // absent: none to delete (a create not answered that did not land, or deleted meanwhile)
      if (p.record && (await deleteMoveRecord(ctx, p.id, p.record)) === 'rewritten')
        problem = `its record ${record} was rewritten by another command meanwhile (this move was stopped past its lock), and stays`;
    } catch (error) {
      problem = `its record ${record} stays: ${(error as Error).message}`;
    }
  }
  if (problem === undefined) {
    return `move of tenant ${p.id} undone: ${steps.join(', ') || 'nothing had changed'}`;
  }
  const now = await entryNow(ctx, p.id);
  if (now.absent) {
    // removed while this move ran (an outside check was told "unknown (etcd did not answer)",
    // and to run moves that answer "unknown tenant")
    return `move of tenant ${p.id} could not be undone (${problem}): ${leftAfterTakeover(p.id, now, done.copy === 'none' ? [p.from] : [p.from, p.to])}`;
  }
  const where = now.text ?? 'unknown (etcd did not answer)';
  const copies =
    done.copy === 'made'
      ? ` and on shard ${p.to}`
      : done.copy === 'maybe'
        ? ` (and on shard ${p.to} if the copy's COMMIT landed)`
        : '';
  return `move of tenant ${p.id} could not be undone (${problem}): its entry now names ${where}; its rows are on shard ${p.from}${copies}, nothing was deleted. Run \`shardgate-ctl tenants move ${p.id} --to ${p.to}\` again to finish it, or \`--to ${p.from}\` to take it back (before the switch only)`;
}

/** how often, and how far apart, an undo tries to put the entry back while etcd does not answer */
const UNDO_TRIES = 3;
const UNDO_RETRY_MS = 1000;

/**
 * putPlacement for an undo, tried again while etcd does not answer: after a freeze of a few
 * seconds the first call often failed on a channel gRPC had closed, while etcd answered the next
 * (an outside check: the tenant stayed readonly until an operator ran the move again). A try that
 * answered an error may have landed: one that then finds the entry already at `next` is done.
 */
async function putPlacementRetried(
  ctx: CtlContext,
  id: string,
  expected: Placement,
  next: Placement,
): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await putPlacement(ctx, id, expected, next);
      return;
    } catch (error) {
      if (attempt > 1 && error instanceof UserError) {
        const now = loadState(await readPrefix(ctx)).snapshot.tenants.get(id);
        if (now?.shard === next.shard && now.status === next.status) return;
      }
      if (!(error instanceof UnreachableError) || attempt >= UNDO_TRIES) throw error;
      await new Promise((r) => setTimeout(r, UNDO_RETRY_MS));
    }
  }
}
