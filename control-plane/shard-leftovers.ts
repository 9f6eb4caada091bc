/**
 * What would be stranded by `shards remove`: once the shard's key is gone, nothing of the project
 * reaches its database again. Before, the remove was refused only while tenants or `placement`
 * named the shard, and went through silently while (an outside check):
 *
 * - a move record names it (`/<prefix>.moves/<id>`, a move interrupted between the switch and
 *   the source's deletion): `tenants move` could no longer finish it, `tenants show` still said
 *   it would, and the record stayed until deleted with etcdctl;
 * - a removal record names it (`/<prefix>.removed/<id>/<shard>`, rows a `tenants remove` or a
 *   move left there): `tenants delete-rows` could no longer reach them;
 * - its outbox holds mail not yet delivered (nor dead-lettered): a tenant moved off keeps its
 *   outbox rows on the source until the email worker has delivered them, and the worker stops
 *   reading a shard when its key goes (the mail went out only when the shard was added again).
 *
 * Answers one line per finding; the outbox is asked with the database credentials, and a master
 * that cannot be asked (down: a reason to remove a shard) is a finding of its own, worded so.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { ShardConfig } from '../src/config/schema.js';
import type { CtlContext } from './ctl-context.js';
import { UnreachableError } from './ctl-errors.js';
import { base, readMoveRecord } from './move-record.js';
import { NO_SUCH_TABLE_ERRNO } from './schema-state.js';
import { connectShardServer } from './shard-server.js';

/** a count of an indexed range: far more than it takes */
const STATEMENT_TIMEOUT_MS = 5000;
/** ER_BAD_FIELD_ERROR */
const UNKNOWN_COLUMN_ERRNO = 1054;

/** `sharedWith`: another configured shard id for the same database, whose outbox stays read */
export async function shardLeftovers(
  ctx: CtlContext,
  id: string,
  shard: ShardConfig,
  sharedWith?: string,
): Promise<string[]> {
  const found: string[] = [];
  const moves = `${base(ctx.prefix)}.moves/`;
  const moving = (await ctx.call(() => ctx.etcd.getAll().prefix(moves).keys())).map((k) =>
    k.slice(moves.length),
  );
  for (const tenant of moving.sort()) {
    // an unreadable record may name this shard: said, not skipped; etcd not answering stops the
    // command (exit 2), as everywhere
    const record = await readMoveRecord(ctx, tenant).catch((error: unknown) => {
      if (error instanceof UnreachableError) throw error;
      found.push(
        `the move record of tenant ${tenant} cannot be read (${(error as Error).message}): it may name this shard`,
      );
      return undefined;
    });
    if (record && (record.from === id || record.to === id))
      found.push(
        `the move of tenant ${tenant} from shard ${record.from} to ${record.to} is not finished: run \`tenants move ${tenant} --to ${record.to}\` to finish it first`,
      );
  }
  const removed = `${base(ctx.prefix)}.removed/`;
  const records = (await ctx.call(() => ctx.etcd.getAll().prefix(removed).keys()))
    .map((k) => k.slice(removed.length).split('/'))
    .filter((parts) => parts.length === 2 && parts[1] === id)
    .map((parts) => parts[0]!)
    .sort();
  for (const tenant of records)
    found.push(
      `rows of removed tenant ${tenant} may be left there: \`tenants delete-rows ${tenant} --shard ${id} --yes\` deletes them and its record`,
    );
  // another id for the same database (a rename) keeps its outbox read
  if (!sharedWith) {
    const undelivered = await undeliveredMail(ctx, id, shard);
    if (undelivered) found.push(undelivered);
  }
  return found;
}

async function undeliveredMail(ctx: CtlContext, id: string, shard: ShardConfig): Promise<string | undefined> {
  let connection: Awaited<ReturnType<typeof connectShardServer>> | undefined;
  try {
    connection = await connectShardServer(ctx.env, id, shard, shard.master, {
      statementTimeoutMs: STATEMENT_TIMEOUT_MS,
    });
    const ask = (sql: string) => connection!.query<RowDataPacket[]>({ sql, timeout: STATEMENT_TIMEOUT_MS });
    // a schema before 0007 has no dead-letter mark: every undelivered row counts
    const [rows] = await ask(
      'SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL AND dead_lettered_at IS NULL',
    ).catch((error: unknown) => {
      if ((error as { errno?: number }).errno === UNKNOWN_COLUMN_ERRNO)
        return ask('SELECT COUNT(*) AS n FROM outbox WHERE delivered_at IS NULL');
      throw error;
    });
    const n = Number(rows[0]?.n ?? 0);
    return n > 0
      ? `its outbox holds ${n} mail(s) not delivered yet: the email worker sends them only while the shard is configured; re-run once it has`
      : undefined;
  } catch (error) {
    // never migrated: no outbox, no mail
    if ((error as { errno?: number }).errno === NO_SUCH_TABLE_ERRNO) return undefined;
    return `its outbox could not be checked for mail not delivered yet (${(error as Error).message.split('\n')[0]})`;
  } finally {
    connection?.destroy();
  }
}
