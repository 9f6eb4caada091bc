/**
 * `tenants delete-rows <id> --shard <s> --yes`: delete every row a tenant id holds on one shard's
 * master (members, books, loans, idempotency keys, its tenant_state, and its mails already
 * delivered), so the id is free there and nothing of that tenant is kept. `tenants remove` deletes
 * the directory entry only; this is the second step of taking a tenant off for good, and the way
 * to clear rows a `tenants move --keep-source` or an interrupted move left behind.
 *
 * Refused (exit 1, nothing deleted) while the directory places the tenant on that shard (it is
 * live there: remove it first), while a record of a move of it exists (the move may still copy
 * or delete rows: finish or take it back), without --yes, for an unknown shard, and without a
 * database password (the rows cannot be reached). Mails not delivered yet (outbox rows whose
 * delivery the worker has not recorded) stay and are sent; the line says how many.
 *
 * Failure modes: the master unreachable or not answering is exit 2 (shard-server.ts), with what
 * was deleted until then lost from the output only: each batch commits on its own and every
 * batch deletes children before parents (tenant-rows.ts deleteTenantRows), so running the command
 * again deletes the rest. The removal record of the id on that shard is deleted once the rows
 * are; Redis entries of the id are cleared as `tenants create` clears them.
 */
import type { ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import { looseTenantEntry } from '../../src/config/loose-entry.js';
import { ID_PATTERN } from '../../src/config/schema.js';
import { shardPassword } from '../../src/db/shard-password.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { readMoveRecord } from '../move-record.js';
import { loadState, readPrefix } from '../prefix-read.js';
import { updateRemovalRecord } from '../removal-record.js';
import { forgetTenantKeys } from '../tenant-cache.js';
import { connectShardServer, deleteTenantRows } from '../tenant-rows.js';

const DELIVERED_PAGE_ROWS = 1000;

export async function deleteTenantRowsCommand(
  ctx: CtlContext,
  id: string,
  opts: { shard: string; yes?: boolean },
): Promise<void> {
  if (!ID_PATTERN.test(id)) throw new UserError(`invalid tenant id "${id}": must match ${ID_PATTERN.source}`);
  const read = await readPrefix(ctx);
  const { snapshot } = loadState(read);
  const shard = snapshot.shards.get(opts.shard);
  if (!shard) {
    const known = [...snapshot.shards.keys()].sort((a, b) => a.localeCompare(b)).join(', ');
    throw new UserError(`unknown shard "${opts.shard}" (known: ${known}); nothing deleted`);
  }
  // the entry as written, valid or not: one the instances reject may still be in force as it was
  const written = looseTenantEntry(read.entries.get(`tenants/${id}`))?.shard;
  if (snapshot.tenants.get(id)?.shard === opts.shard || written === opts.shard) {
    throw new UserError(
      `tenant ${id} is in the directory on shard ${opts.shard}: its rows are in use; remove it first (tenants remove ${id} --yes); nothing deleted`,
    );
  }
  if (await readMoveRecord(ctx, id).catch(() => 'unreadable')) {
    throw new UserError(
      `tenant ${id} has the record of a move (tenants show ${id}): finish it or take it back with tenants move first; nothing deleted`,
    );
  }
  if (!opts.yes) {
    throw new UserError(
      `deleting every row of tenant ${id} on shard ${opts.shard} cannot be undone; re-run with --yes`,
    );
  }
  if (shardPassword(ctx.env, shard.passwordEnv) === undefined) {
    throw new UserError(
      `the rows of shard ${opts.shard} need the database password: set ${shard.passwordEnv ?? 'SHARDGATE_DB_PASSWORD'}; nothing deleted`,
    );
  }
  const connection = await connectShardServer(ctx.env, opts.shard, shard, shard.master);
  let deleted: Awaited<ReturnType<typeof deleteTenantRows>>;
  let mails = 0;
  let pending = 0;
  try {
    deleted = await deleteTenantRows(connection, id);
    // delivered mails hold the members' addresses; a mail not delivered yet is still owed
    for (;;) {
      const [result] = await connection.query<ResultSetHeader>(
        `DELETE FROM outbox WHERE tenant_id = ? AND delivered_at IS NOT NULL LIMIT ${DELIVERED_PAGE_ROWS}`,
        [id],
      );
      mails += result.affectedRows;
      if (result.affectedRows < DELIVERED_PAGE_ROWS) break;
    }
    const [rows] = await connection.query<RowDataPacket[]>(
      'SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ?',
      [id],
    );
    pending = Number(rows[0]?.n ?? 0);
  } finally {
    connection.destroy();
  }
  await updateRemovalRecord(ctx, id, opts.shard, undefined);
  await forgetTenantKeys(ctx, id, opts.shard);
  const counts = [
    `${deleted.members} member(s)`,
    `${deleted.books} book(s)`,
    `${deleted.loans} loan(s)`,
    `${deleted.idempotency_keys} idempotency key(s)`,
    `${mails} delivered mail(s)`,
  ].join(', ');
  ctx.out(
    `shard ${opts.shard}: deleted ${counts} of tenant ${id}; the id is free there` +
      (pending > 0 ? `; ${pending} mail(s) not delivered yet stay in the outbox and will be sent` : ''),
  );
}
