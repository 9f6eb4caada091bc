/**
 * The shared write path of single-purpose commands (`lb weight`, `breakers set`, `tenants …`,
 * `shards …`): read, let the caller compute the desired keys from what it read, validate, commit
 * in one guarded transaction, print the diff.
 *
 * The transaction is guarded by "no managed key changed since the revision read" (commitChanges),
 * which includes the mod_revision of every key written: an edit made in between is never lost,
 * the command is refused and says to re-run.
 */
import {
  type Change,
  commitChanges,
  formatChange,
  type PrefixRead,
  planChanges,
  readPrefix,
} from './config-io.js';
import type { CtlContext } from './ctl-context.js';

/** How a command words its outcome, instead of the raw key diff and "no changes". */
export interface WriteReport {
  /** lines printed after a successful write, before `revision N` */
  changed?: (changes: Change[]) => string[];
  /** the line printed when there is nothing to write */
  unchanged?: string;
}

export async function writeKeys(
  ctx: CtlContext,
  compute: (read: PrefixRead) => Map<string, string | undefined> | Promise<Map<string, string | undefined>>,
  report: WriteReport = {},
): Promise<Change[]> {
  const read = await readPrefix(ctx);
  const changes = planChanges(read, await compute(read));
  if (changes.length === 0) {
    ctx.out(report.unchanged ?? 'no changes');
    return changes;
  }
  const revision = await commitChanges(ctx, read, changes);
  for (const line of report.changed?.(changes) ?? changes.map(formatChange)) ctx.out(line);
  ctx.out(`revision ${revision}`);
  return changes;
}
