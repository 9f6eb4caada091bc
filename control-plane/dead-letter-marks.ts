/**
 * `mail redrive`'s step on the shard masters: before a dead-lettered mail goes back to the work
 * queue, the mark the email worker set on its outbox row when it dead-lettered it
 * (`dead_lettered_at`, src/mail/delivery-batcher.ts) is cleared. A marked row is one the
 * worker's lost-mail sweep (src/mail/lost-mail-sweep.ts) never re-publishes, because its copy
 * waits in the dead-letter queue; once redriven that copy is in the work queue, and should the
 * broker drop it there, only the sweep would send it again.
 *
 * Cleared BEFORE the move, and a mail whose mark could not be cleared is not moved (it stays in
 * the dead-letter queue, marked, for the next redrive): never a moved mail that stays marked,
 * which a later loss would leave unsent for good. The other order's failure is the harmless one:
 * a mark cleared and the move then failing leaves an unmarked copy in the dead-letter queue,
 * which the sweep may re-publish — one more copy, mailed once (the worker's `delivered_at`).
 *
 * Each mail's row is looked for on the shard its message names; a mail naming a shard that is no
 * longer in etcd on every shard (outbox ids are unique). A shard without the column (not
 * migrated yet) has no marks to clear.
 */
import type { ShardConfig } from '../src/config/schema.js';
import type { MailMessage } from '../src/mail/mail-message.js';
import type { CtlContext } from './ctl-context.js';
import { loadState, readPrefix } from './prefix-read.js';
import { connectShardServer } from './shard-server.js';

/** each shard's statement bound */
const STATEMENT_TIMEOUT_MS = 10_000;
/** ER_BAD_FIELD_ERROR: `dead_lettered_at` unknown, the shard is not migrated */
const ER_BAD_FIELD_ERROR = 1054;

export interface ClearedMarks {
  /** outbox ids whose mark is cleared (or that have no mark to clear) */
  cleared: Set<string>;
  /** one line per shard that failed, naming it and why */
  failures: string[];
}

export async function clearDeadLetterMarks(
  ctx: CtlContext,
  mails: readonly Pick<MailMessage, 'outboxId' | 'shardId'>[],
): Promise<ClearedMarks> {
  const cleared = new Set<string>();
  const failures: string[] = [];
  if (mails.length === 0) return { cleared, failures };
  const shards = loadState(await readPrefix(ctx)).snapshot.shards;
  const byShard = new Map<string, Set<string>>();
  const orphans = new Set<string>();
  for (const m of mails) {
    if (!shards.has(m.shardId)) {
      orphans.add(m.outboxId);
      continue;
    }
    const ids = byShard.get(m.shardId) ?? new Set<string>();
    ids.add(m.outboxId);
    byShard.set(m.shardId, ids);
  }
  let orphansOk = true;
  for (const [shardId, shard] of shards) {
    const ids = [...(byShard.get(shardId) ?? []), ...orphans];
    if (ids.length === 0) continue;
    try {
      await clearOn(ctx, shardId, shard, ids);
      for (const id of byShard.get(shardId) ?? []) cleared.add(id);
    } catch (error) {
      const reason = (error as Error).message.split('\n')[0];
      failures.push(`shard ${shardId}: ${reason}`);
      if (orphans.size > 0) orphansOk = false;
    }
  }
  if (orphansOk) for (const id of orphans) cleared.add(id);
  return { cleared, failures };
}

async function clearOn(ctx: CtlContext, shardId: string, shard: ShardConfig, ids: string[]): Promise<void> {
  const connection = await connectShardServer(ctx.env, shardId, shard, shard.master, {
    statementTimeoutMs: STATEMENT_TIMEOUT_MS,
  });
  try {
    await connection.query('UPDATE outbox SET dead_lettered_at = NULL WHERE id IN (?)', [ids]);
  } catch (error) {
    if ((error as { errno?: number }).errno !== ER_BAD_FIELD_ERROR) throw error;
  } finally {
    await connection.end().catch(() => connection.destroy());
  }
}
