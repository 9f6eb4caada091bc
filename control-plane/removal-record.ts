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
 * Written only when the rows were found or could not be counted; deleted when a later `create`
 * or `remove` counts none there, and when `create --adopt-rows` takes them back. A record that
 * cannot be read counts as one (it still says the id was removed there). A tenant removed by a
 * plain `etcdctl del` leaves none: `create` then warns as before.
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
  await ctx.call(() =>
    ctx.etcd
      .put(removalRecordKey(ctx.prefix, id, shard))
      .value(value)
      .exec(),
  );
}

export async function deleteRemovalRecord(ctx: CtlContext, id: string, shard: string): Promise<void> {
  await ctx.call(() =>
    ctx.etcd
      .delete()
      .key(removalRecordKey(ctx.prefix, id, shard))
      .exec(),
  );
}
