/**
 * The shared write path of single-purpose commands (`lb weight`, `breakers set`, `tenants create`,
 * `shards …`): read, let the caller compute the desired keys from what it read, validate, commit
 * in one guarded transaction, print the diff.
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

export async function writeKeys(
  ctx: CtlContext,
  compute: (read: PrefixRead) => Map<string, string | undefined>,
): Promise<Change[]> {
  const read = await readPrefix(ctx);
  const changes = planChanges(read, compute(read));
  if (changes.length === 0) {
    ctx.out('no changes');
    return changes;
  }
  const revision = await commitChanges(ctx, read, changes);
  for (const c of changes) ctx.out(formatChange(c));
  ctx.out(`revision ${revision}`);
  return changes;
}
