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
 *    COPY_ATTEMPTS times in all, move-run.ts).
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
 * resumeMove (move-resume.ts).
 */
import { formatHostPort } from '../../src/config/host-port.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { withMoveLock } from '../move-lock.js';
import { readMoveRecord } from '../move-record.js';
import { resumeMove } from '../move-resume.js';
import { type MoveOptions, moveLocked } from '../move-run.js';
import { loadState, readPrefix } from '../prefix-read.js';
import { sameDatabase } from '../same-database.js';
import { unknownTenant } from '../unknown-tenant.js';

const DEFAULT_WAIT_MS = 10_000;

export async function moveTenant(ctx: CtlContext, id: string, opts: MoveOptions): Promise<void> {
  // the entry and the move record are read under the lock: one read before it could be a
  // finished move's old shard, or the record of a move that is still running
  await withMoveLock(ctx, id, () => checkAndMove(ctx, id, opts));
}

async function checkAndMove(ctx: CtlContext, id: string, opts: MoveOptions): Promise<void> {
  const waitMs = opts.waitMs ?? DEFAULT_WAIT_MS;
  const read = await readPrefix(ctx);
  const state = loadState(read);
  const problem = state.rejected.find((r) => r.key === `tenants/${id}`);
  if (problem) {
    // the entry itself may be fine, its shard's key gone (deleted by hand): the way out is the key
    const shardGone = /^unknown shard "([^"]+)"/.exec(problem.reason)?.[1];
    throw new UserError(
      shardGone
        ? `tenant ${id} has an entry the API instances reject (${problem.reason}): its shard's key shards/${shardGone} is gone (the instances keep serving the tenant from their last good value); put it back with \`shards add ${shardGone} --master …\` (the same servers and database), then move the tenant`
        : `tenant ${id} has an entry the API instances reject (${problem.reason}): make it valid before moving it`,
    );
  }
  const entry = state.snapshot.tenants.get(id);
  if (!entry) throw unknownTenant(id);
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
      `shards ${from} and ${to} name the same database (${formatHostPort(target.master.host, target.master.port)} ${target.database}): the tenant's rows are there already; point tenants/${id} at ${to} with \`etcdctl put\` or \`config apply\` instead`,
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
