/**
 * The record `tenants remove` leaves of a tenant whose rows stay on its shard, beside the config
 * prefix and not in it (`/shardgate.removed/<tenantId>/<shardId>`, like the move records), so no
 * instance watches it and `config export` leaves it out.
 *
 * Why: the rows are keyed by the tenant id, so a tenant created again with that id on that shard
 * gets them back, its members, librarian and unexpired tokens included. `tenants create` counts
 * them when it has a database password; without one (an etcd-only operator) it could not tell a
 * fresh id from a removed one and only warned (an outside check: the old librarian's token worked
 * in the new tenant). With this record it refuses an id removed from that shard while the rows
 * cannot be counted, unless `--adopt-rows`.
 *
 * Written by `tenants remove` when the rows were found or could not be counted (for both shards
 * of an interrupted move), by `config apply` for each tenant entry it deletes (it counts no rows),
 * and by `tenants move --keep-source` for the source it leaves the rows on. Deleted when a later
 * `create` or `remove` counts none there, when `create --adopt-rows` or `config apply
 * --adopt-rows`/`--force` takes them back, when a move deletes the source's rows, and for a
 * move's target (its rows are the tenant's now). A record that cannot be read counts as one (it
 * still says the id was removed there). A tenant removed by a plain `etcdctl del` leaves none:
 * `create` then warns as before.
 */
import type { CtlContext } from './ctl-context.js';
import { base } from './move-record.js';

export interface RemovalRecord {
  /** ISO time of the removal; undefined when the record is not readable */
  removedAt: string | undefined;
  /** whether the removal found rows or could not count them */
  rows: 'present' | 'unchecked' | undefined;
}

export const removalRecordKey = (prefix: string, id: string, shard: string) =>
  `${base(prefix)}.removed/${id}/${shard}`;

export async function readRemovalRecord(
  ctx: CtlContext,
  id: string,
  shard: string,
): Promise<RemovalRecord | undefined> {
  const raw = await ctx.call(() => ctx.etcd.get(removalRecordKey(ctx.prefix, id, shard)).string());
  if (raw === null) return undefined;
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(raw);
    if (value && typeof value === 'object') parsed = value as Record<string, unknown>;
  } catch {
    // not JSON: still a record of a removal
  }
  const removedAt =
    typeof parsed.removedAt === 'string' && !Number.isNaN(Date.parse(parsed.removedAt))
      ? parsed.removedAt
      : undefined;
  const rows = parsed.rows === 'present' || parsed.rows === 'unchecked' ? parsed.rows : undefined;
  return { removedAt, rows };
}

export async function writeRemovalRecord(
  ctx: CtlContext,
  id: string,
  shard: string,
  rows: 'present' | 'unchecked',
): Promise<void> {
  const value = JSON.stringify({ removedAt: new Date().toISOString(), rows });
  await ctx.call(
    () =>
      ctx.etcd
        .put(removalRecordKey(ctx.prefix, id, shard))
        .value(value)
        .exec(),
    { write: true },
  );
}

export async function deleteRemovalRecord(ctx: CtlContext, id: string, shard: string): Promise<void> {
  await ctx.call(
    () =>
      ctx.etcd
        .delete()
        .key(removalRecordKey(ctx.prefix, id, shard))
        .exec(),
    { write: true },
  );
}

/**
 * Writes (`rows` given) or deletes (`rows` undefined) the record once the command's own change is
 * written: a failure is then a warning naming what it risks, never the command's failure (the
 * change stands).
 */
export async function updateRemovalRecord(
  ctx: CtlContext,
  id: string,
  shard: string,
  rows: 'present' | 'unchecked' | undefined,
): Promise<void> {
  try {
    if (rows) await writeRemovalRecord(ctx, id, shard, rows);
    else await deleteRemovalRecord(ctx, id, shard);
  } catch (error) {
    ctx.warn(
      `the removal record of tenant id ${id} on shard ${shard} (${removalRecordKey(ctx.prefix, id, shard)}) could not be ${rows ? 'written' : 'deleted'} (${(error as Error).message.split('\n')[0]}): ${rows ? 'a `tenants create` of the id there without a database password will only warn' : 'a `tenants create` of the id there without a database password will refuse it; delete the key with etcdctl'}`,
    );
  }
}
