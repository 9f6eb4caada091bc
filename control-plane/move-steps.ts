/**
 * The etcd and replica steps of a `tenants move`: write the tenant's placement (guarded by what
 * the move expects it to be), wait for every instance to apply a revision, wait for a shard's
 * replicas to apply the copy. A step that does not happen in time, or an entry changed by someone
 * else, is a UserError; etcd or a shard server unreachable is an UnreachableError (exit 2).
 */
import type { Connection } from 'mysql2/promise';
import type { ShardConfig, TenantEntry } from '../src/config/schema.js';
import { planChanges } from './change-plan.js';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError, UserError } from './ctl-errors.js';
import { loadState, readPrefix } from './prefix-read.js';
import { CONNECT_TIMEOUT_MS, ServerUnreachableError } from './shard-server.js';
import {
  addressOf,
  connectShardServer,
  type FollowCheck,
  followPositions,
  notFollowingReason,
  replicaApplied,
  replicaFollows,
  replicationStopped,
} from './tenant-rows.js';
import { commitFromRead } from './write-keys.js';

/** the least time a statement of a move on a shard server is given, whatever --wait-ms says */
export const MIN_STATEMENT_BOUND_MS = 1000;

/**
 * How long a shard server may take to answer one statement of a move (a page of the copy, its
 * COMMIT, a position, a comparison) before it counts as not answering: `--wait-ms`, at least
 * MIN_STATEMENT_BOUND_MS (a page of 1,000 rows is no 100 ms job on a loaded box).
 */
export const statementBoundMs = (waitMs: number) => Math.max(waitMs, MIN_STATEMENT_BOUND_MS);

/** where a tenant is and what it may do: the two fields of its entry a move changes */
export type Placement = Pick<TenantEntry, 'shard' | 'status'>;

/**
 * Write the tenant's entry as `next` (its other fields kept), provided etcd still holds `expected`;
 * answers the revision written. In the same transaction its move mark `moving/<id>` (schema.ts
 * moveMarkSchema): written when this turns an active tenant readonly, written again (dated now)
 * while it stays readonly (the switch, a resumed move), deleted when it gets another status (the
 * end of the move, an undo). A tenant an operator made readonly never gets one.
 */
export async function putPlacement(
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
    const markKey = `moving/${id}`;
    const marked = next.status === 'readonly' && (expected.status === 'active' || read.entries.has(markKey));
    // dated now at every step that keeps it (the switch, a resumed move): the move is alive
    const markValue = marked ? JSON.stringify({ since: new Date().toISOString() }) : undefined;
    return planChanges(
      read,
      new Map([
        [key, value],
        [markKey, markValue],
      ]),
    );
  });
  return revision;
}

/**
 * How often a running move dates its mark again: well inside the minute within which the API
 * gives a moving tenant's refused writes `Retry-After` (src/routing/tenant-directory.ts
 * MOVE_RETRY_WINDOW_MS).
 */
export const MOVE_MARK_REFRESH_MS = 20_000;

/**
 * Runs `body` (a move's copy, replica waits and switch) while the tenant's move mark, when there
 * is one, is dated now every `everyMs`: a copy that takes longer than a minute keeps its refused
 * writes' `Retry-After` to the end. It never creates a mark: each refresh is a transaction that
 * puts only if the mark is still the version it read, so one deleted or rewritten meanwhile (the
 * move's own next step, `set-status`, an operator's etcdctl) stays as that left it. A refresh
 * that fails is warned of once and does not stop the move: the mark tells clients when to retry,
 * it guards nothing. The refresh under way when `body` ends is awaited.
 */
export async function withMoveMarkKept<T>(
  ctx: CtlContext,
  id: string,
  body: () => Promise<T>,
  everyMs = MOVE_MARK_REFRESH_MS,
): Promise<T> {
  const key = `${ctx.prefix}moving/${id}`;
  let warned = false;
  const refresh = async () => {
    try {
      const kv = (await ctx.call(() => ctx.etcd.get(key).exec())).kvs[0];
      if (!kv) return;
      await ctx.call(
        () =>
          ctx.etcd
            .if(key, 'Mod', '==', kv.mod_revision)
            .then(ctx.etcd.put(key).value(JSON.stringify({ since: new Date().toISOString() })))
            .commit(),
        { write: true },
      );
    } catch (error) {
      if (warned) return;
      warned = true;
      ctx.warn(
        `could not date the move mark moving/${id} again (${error instanceof Error ? error.message : String(error)}): the move goes on; writes refused more than a minute after its last date get no Retry-After`,
      );
    }
  };
  let running: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(refresh);
  }, everyMs);
  try {
    return await body();
  } finally {
    clearInterval(timer);
    await running;
  }
}

/**
 * Wait until every instance registered in etcd reports a config revision of at least `revision`,
 * and none lists tenant `tenant`'s entry among those it rejects (instance-registration.ts): such
 * an instance keeps the entry's last good value, the tenant on its old shard (a shard or
 * `passwordEnv` it cannot use that the CLI can), and would write there after the switch.
 */
export async function waitForInstances(
  ctx: CtlContext,
  revision: number,
  waitMs: number,
  tenant: string,
): Promise<number> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    // judged by a read begun by the deadline's end: a command stopped (SIGSTOP, a stalled VM)
    // past it between its read and this check gave up on what it read before the stop (seen in a
    // takeover test: the instances had applied the revision, and more, meanwhile)
    const readAt = Date.now();
    const instances = loadState(await readPrefix(ctx)).snapshot.instances;
    const behind = [...instances].flatMap(([id, i]) =>
      i.configRevision < revision
        ? [`${id} (at revision ${i.configRevision})`]
        : i.rejectedTenants?.includes(tenant) || i.rejectedTenantsTruncated === true
          ? [`${id} (rejects the entry of tenant ${tenant}, or more entries than it lists)`]
          : [],
    );
    if (behind.length === 0) return instances.size;
    if (readAt >= deadline) {
      throw new UserError(
        `instance${behind.length > 1 ? 's' : ''} ${behind.join(', ')} did not apply revision ${revision} within ${waitMs} ms`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The replicas of `shard` that did not apply `position` within `waitMs` (with why), the addresses
 * of those that did, and those that do not follow the shard's master; with `running`, one whose
 * replication threads do not both run is behind too, whatever it applied (a stopped replica of an
 * idle master is at its position, but would not apply a copy). A replica counts as having applied
 * `position` only if its position contains it (MASTER_GTID_WAIT / WAIT_FOR_EXECUTED_GTID_SET) AND
 * is contained in the master's read after it (tenant-rows.ts replicaFollows): MariaDB's wait
 * compares sequence numbers per domain only, so a replica of another master whose numbers are
 * higher "applied" any position of this one (an outside check: a move said shard-1's replica
 * applied a copy on shard-2's master). Such a replica is a stranger, with what was read. A
 * replica that cannot be reached is warned of and in no list (it serves nothing, and the
 * instances take it back only once it has caught up, `position` included). The master is
 * connected to once, when the first replica has applied `position`; failing that is thrown.
 *
 * Bounded: each replica has `waitMs` in all, its login included (that within
 * statementBoundMs(waitMs) and CONNECT_TIMEOUT_MS): one that does not log in within that is
 * unreachable, one that stops answering after it
 * logged in (frozen mid-wait) is behind. A move calls this while its tenant is read-only, where
 * a 5 s login to a frozen replica once outlasted `--wait-ms 3000` (an outside check: 5.4 s).
 */
async function replicasAt(
  ctx: CtlContext,
  shardId: string,
  shard: ShardConfig,
  position: string,
  { waitMs, running = false }: { waitMs: number; running?: boolean },
): Promise<{ applied: string[]; behind: string[]; strangers: string[] }> {
  const applied: string[] = [];
  const behind: string[] = [];
  const strangers: string[] = [];
  const statementTimeoutMs = statementBoundMs(waitMs);
  const bounds = { connectTimeoutMs: Math.min(CONNECT_TIMEOUT_MS, statementTimeoutMs), statementTimeoutMs };
  let master: Connection | undefined;
  try {
    for (const replica of shard.replicas) {
      const deadline = Date.now() + waitMs;
      let connection: Connection;
      try {
        connection = await connectShardServer(ctx.env, shardId, shard, replica, bounds);
      } catch (error) {
        if (!(error instanceof UnreachableError)) throw error;
        ctx.warn(
          `${error.message}: going on without it (the instances do not read from a replica they cannot reach, and take it back only once it has caught up, the copy included)`,
        );
        continue;
      }
      try {
        const stopped = running ? await replicationStopped(connection) : undefined;
        if (stopped) behind.push(`${addressOf(replica)} (${stopped})`);
        else if (!(await replicaApplied(connection, position, deadline - Date.now())))
          behind.push(`${addressOf(replica)} (did not apply ${position} within ${waitMs} ms)`);
        else {
          master ??= await connectShardServer(ctx.env, shardId, shard, shard.master, bounds);
          const check = await replicaFollows(connection, master);
          if (check.follows === true) applied.push(addressOf(replica));
          else strangers.push(notFollowing(addressOf(replica), addressOf(shard.master), check));
        }
      } catch (error) {
        // the replica took the login, then stopped answering: it holds nothing we can vouch for
        if (!(error instanceof ServerUnreachableError && error.server === addressOf(replica))) throw error;
        behind.push(`${addressOf(replica)} (${error.reason})`);
      } finally {
        await connection.end().catch(() => {});
      }
    }
  } finally {
    await master?.end().catch(() => {});
  }
  return { applied, behind, strangers };
}

/** `replica A has applied transactions master M does not have (replica …, master …)` */
function notFollowing(replica: string, master: string, check: FollowCheck): string {
  return check.follows === false
    ? notFollowingReason(replica, master, check)
    : `replica ${replica}'s position could not be compared with master ${master}'s ${followPositions(check)}`;
}

/**
 * Before a move touches anything: every reachable replica of the target replicates (both threads
 * running), applies what its master has committed now within `withinMs`, and follows that master
 * (replicasAt). A stopped or lagging replica would make the move set the tenant readonly, copy,
 * wait `--wait-ms` for that replica to apply the copy, and undo it all (writes refused with 423
 * the whole time); one that follows another server would be said to hold a copy it never got.
 * Refused here instead, naming the replica and why.
 */
export async function checkTargetReplicas(
  ctx: CtlContext,
  shardId: string,
  shard: ShardConfig,
  masterNow: string,
  withinMs: number,
): Promise<void> {
  const { behind, strangers } = await replicasAt(ctx, shardId, shard, masterNow, {
    waitMs: withinMs,
    running: true,
  });
  if (strangers.length > 0)
    throw new UserError(
      `${strangers.join('; ')}: it does not replicate from shard ${shardId}'s master. Nothing was changed; take it out of the shard (shards remove-replica ${shardId} <host:port>) or re-seed it from the shard's master, then move again`,
    );
  if (behind.length === 0) return;
  throw new UserError(
    `replica ${behind.join(', ')} of shard ${shardId} does not keep up with its master: replication stopped or lagging. Nothing was changed; start its replication (START SLAVE) or take it out of the shard (shards remove-replica ${shardId} <host:port>), then move again`,
  );
}

/**
 * Wait until every replica of the shard has applied `position` and follows the shard's master
 * (replicasAt); an unreachable one is warned of.
 */
export async function waitForReplicas(
  ctx: CtlContext,
  shardId: string,
  shard: ShardConfig,
  position: string,
  waitMs: number,
): Promise<void> {
  const { applied, behind, strangers } = await replicasAt(ctx, shardId, shard, position, { waitMs });
  if (strangers.length > 0)
    throw new UserError(
      `${strangers[0]}: it does not replicate from shard ${shardId}'s master, so it does not hold the copy (${position})`,
    );
  if (behind.length > 0)
    throw new UserError(
      `replica ${behind[0]!.split(' ')[0]} of shard ${shardId} did not apply the copy (${position}) within ${waitMs} ms`,
    );
  if (applied.length > 0) ctx.out(`shard ${shardId}'s replicas applied the copy: ${applied.join(', ')}`);
}
