/**
 * What is left of a dead move when its tenant's entry goes (`tenants remove`, a `config apply`
 * that deletes the entry, or the entry already deleted by hand): the move copied rows to its
 * target, and its source may keep some, so both shards may hold rows of the id. Each of them
 * (but `recorded`, which the caller recorded with a count) gets a removal record (`unchecked`:
 * `tenants create` of the id there refuses it unless --adopt-rows), and the move record is
 * deleted, only where etcd still holds the record as read. Without this, the record outlived the
 * entry: `status` listed the move as interrupted, `tenants show` and `tenants move` answered
 * "unknown tenant", and `tenants delete-rows` refused while the record was there (a review).
 * Answers the line to print, or undefined when another record was written meanwhile (left as it
 * is; the removal records stay written: they only make `tenants create` of the id look first).
 */
import type { CtlContext } from './ctl-context.js';
import { deleteMoveRecord, type MoveRecord } from './move-record.js';
import { updateRemovalRecord } from './removal-record.js';

export async function forgetMoveRecord(
  ctx: CtlContext,
  id: string,
  record: MoveRecord,
  recorded?: string,
  /** the move holds its lock: it stops at its next write (its record gone), and the line says so */
  running = false,
): Promise<string | undefined> {
  for (const shard of new Set([record.from, record.to]))
    if (shard !== recorded) await updateRemovalRecord(ctx, id, shard, 'unchecked');
  if ((await deleteMoveRecord(ctx, id, record)) === 'rewritten') return undefined;
  const move = running ? 'running move (it stops at its next step)' : 'interrupted move';
  return `the record of its ${move} from shard ${record.from} to ${record.to} was deleted; rows it copied may be on both shards: \`tenants delete-rows ${id} --shard <shard> --yes\` deletes them`;
}
