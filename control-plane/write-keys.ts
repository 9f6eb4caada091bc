/**
 * The shared write path of single-purpose commands (`lb weight`, `breakers set`, `tenants …`,
 * `shards …`): read, let the caller compute the desired keys from what it read, validate, commit
 * in one guarded transaction, print the diff.
 *
 * The transaction is guarded by "no managed key changed since the revision read" (commitChanges),
 * which includes the mod_revision of every key written: an edit made in between is never lost. A
 * write of tenant entries alone is not refused for other tenants' changes (guardFor), so
 * `tenants create` run in parallel, or beside a bulk load of the directory, is not refused.
 * Such a write is not refused at once: the command reads again and computes its keys from the new
 * read (so an edit of the same key is seen, and the write validated against it), up to
 * WRITE_ATTEMPTS times; only a prefix that keeps changing faster than that refuses it.
 */
import { type Change, formatChange, planChanges } from './change-plan.js';
import type { CtlContext } from './ctl-context.js';
import { ConcurrentChangeError } from './ctl-errors.js';
import { commitChanges } from './guarded-commit.js';
import { type PrefixRead, readPrefix } from './prefix-read.js';

/** How a command words its outcome, instead of the raw key diff and "no changes". */
export interface WriteReport {
  /** lines printed after a successful write, before `revision N` */
  changed?: (changes: Change[]) => string[];
  /** the line printed when there is nothing to write (a function: worded from what was read) */
  unchanged?: string | (() => string);
}

export const WRITE_ATTEMPTS = 8;

/**
 * The pause before attempt `attempt + 1` of a write refused for a change in between: growing with
 * the attempts, with a random part so that two commands refused by each other do not meet again.
 */
export function retryPause(attempt: number): Promise<void> {
  return new Promise((r) => setTimeout(r, 20 * attempt + Math.random() * 30));
}

/**
 * Read, compute the changes from the read, commit them guarded by its revision; on a change in
 * between, again from a new read (up to WRITE_ATTEMPTS in all). Answers the changes committed
 * and the revision written (the read's when nothing changes).
 */
export async function commitFromRead(
  ctx: CtlContext,
  compute: (read: PrefixRead) => Change[] | Promise<Change[]>,
): Promise<{ changes: Change[]; revision: number }> {
  for (let attempt = 1; ; attempt++) {
    const read = await readPrefix(ctx);
    const changes = await compute(read);
    if (changes.length === 0) return { changes, revision: read.revision };
    try {
      return { changes, revision: await commitChanges(ctx, read, changes, { narrow: true }) };
    } catch (error) {
      if (!(error instanceof ConcurrentChangeError) || attempt >= WRITE_ATTEMPTS) throw error;
      await retryPause(attempt);
    }
  }
}

export async function writeKeys(
  ctx: CtlContext,
  compute: (read: PrefixRead) => Map<string, string | undefined> | Promise<Map<string, string | undefined>>,
  report: WriteReport = {},
): Promise<Change[]> {
  const { changes, revision } = await commitFromRead(ctx, async (read) =>
    planChanges(read, await compute(read)),
  );
  if (changes.length === 0) {
    const { unchanged = 'no changes' } = report;
    ctx.out(typeof unchanged === 'string' ? unchanged : unchanged());
    return changes;
  }
  for (const line of report.changed?.(changes) ?? changes.map(formatChange)) ctx.out(line);
  ctx.out(`revision ${revision}`);
  return changes;
}
