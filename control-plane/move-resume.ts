/**
 * A `tenants move` run again after one that died (its record still there): finish it, or take it
 * back, from where the tenant's entry and its history say it got (resumeMove). Nothing is guessed:
 * an entry changed by hand in a way that leaves it unclear which shard holds the newest rows is a
 * UserError (exit 1) that changes nothing and says what to check.
 */
import type { ShardConfig, TenantEntry } from '../src/config/schema.js';
import type { CtlContext } from './ctl-context.js';
import { UserError } from './ctl-errors.js';
import {
  deleteMoveRecord,
  entryHistory,
  type MoveRecord,
  moveRecordKey,
  movingStatus,
} from './move-record.js';
import {
  dropSource,
  finishSwitch,
  type MoveOptions,
  type MovePlan,
  moveLocked,
  withShardConnections,
} from './move-run.js';
import {
  type Placement,
  putPlacement,
  statementBoundMs,
  waitForInstances,
  withMoveMarkKept,
} from './move-steps.js';
import {
  connectShardServer,
  deleteTenantRows,
  describeCounts,
  differingTables,
  digestTenant,
} from './tenant-rows.js';

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
export async function resumeMove(
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
      await takeBack(ctx, id, { entry, record, target, moving, waitMs });
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
  await withShardConnections(ctx, { from: record.from, to: record.to, source, target, waitMs }, (c) =>
    withMoveMarkKept(ctx, id, async () => {
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
        await waitForInstances(ctx, revision, waitMs, id);
        // killed before it restored the status: restored now (a status set by hand since stays)
        if (entry.status === moving && record.status !== moving) {
          const last = await putPlacement(ctx, id, switched, { shard: record.to, status: record.status });
          ctx.out(`tenant ${id}: ${moving} -> ${record.status} on shard ${record.to}; revision ${last}`);
        }
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
        const changed = differingTables(
          await digestTenant(c.targetDb, id),
          await digestTenant(c.sourceDb, id),
        );
        if (changed.length > 0) {
          throw new UserError(
            `${what}: tenant ${id}'s entry was changed since the switch (now ${entry.status} on ${record.to}${history === 'unknown' ? ", or etcd's history cannot tell" : ''}), and its rows of ${changed.join(', ')} differ between the shards: nothing deleted. Compare them; if ${record.to} has them all, delete ${key} and ${ctx.prefix}moving/${id} with etcdctl, then the rows on ${record.from} with \`shardgate-ctl tenants delete-rows ${id} --shard ${record.from} --yes\` (it refuses while the record is there)`,
          );
        }
        ctx.out(
          `tenant ${id}'s entry was changed since the switch (now ${entry.status}); its rows on both shards are the same, so it keeps that status and the rows on ${record.from} go`,
        );
        await waitForInstances(ctx, revision, waitMs, id);
        p.original = entry.status;
      }
      await dropSource(ctx, p);
    }),
  );
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
    waitMs,
  }: {
    entry: TenantEntry;
    record: MoveRecord;
    target: ShardConfig;
    moving: TenantEntry['status'];
    waitMs: number;
  },
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
  const targetDb = await connectShardServer(ctx.env, record.to, target, target.master, {
    statementTimeoutMs: statementBoundMs(waitMs),
  });
  try {
    // the entry names the source (read under the lock): no instance reads these rows
    const deleted = await deleteTenantRows(targetDb, id);
    ctx.out(`deleted the interrupted move's copy on shard ${record.to}: ${describeCounts(deleted)}`);
  } finally {
    await targetDb.end().catch(() => {});
  }
  if ((await deleteMoveRecord(ctx, id, record)) === 'rewritten') {
    throw new UserError(
      `the interrupted move's record ${moveRecordKey(ctx.prefix, id)} was rewritten by another command while this one took the move back (this one was stopped past its lock): tenant ${id} stays on shard ${record.from}; \`tenants show ${id}\` says what the record holds now`,
    );
  }
  ctx.out(`the interrupted move of tenant ${id} is taken back; it stays on shard ${record.from}`);
}
