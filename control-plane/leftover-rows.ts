/**
 * Rows an earlier tenant of the same id left on a shard: `tenants remove` deletes only the
 * directory entry, and the rows are keyed by the tenant id, so a tenant created again with that
 * id on that shard gets them back — its members, its librarian and their unexpired tokens (an
 * outside review did so: an old librarian's token answered 200 `role: librarian`, and the new
 * owner's first registration became a plain member).
 *
 * Checked only when the command has a database password to check with (SHARDGATE_DB_PASSWORD
 * set, even empty, or the shard's `passwordEnv`). Without one, or when the check cannot run (the
 * master unreachable, the password refused), a warning says the rows were not checked and what
 * that risks (an outside check: a `create` without the password printed nothing, and the old
 * librarian logged in), not a refusal: creating a tenant needs etcd only.
 */
import type { RowDataPacket } from 'mysql2/promise';
import type { ShardConfig } from '../src/config/schema.js';
import { shardPassword } from '../src/db/shard-password.js';
import type { CtlContext } from './ctl-context.js';
import { connectShardServer } from './tenant-rows.js';

export interface RowCounts {
  members: number;
  books: number;
  loans: number;
}

/** the rows of `tenantId` on the shard's master; undefined when not checked (warned) */
export async function leftoverRows(
  ctx: Pick<CtlContext, 'env' | 'warn'>,
  tenantId: string,
  shardId: string,
  shard: ShardConfig,
): Promise<RowCounts | undefined> {
  if (shardPassword(ctx.env, shard.passwordEnv) === undefined) {
    ctx.warn(
      `did not check shard ${shardId} for rows an earlier tenant ${tenantId} left there: no database password (${shard.passwordEnv ?? 'SHARDGATE_DB_PASSWORD'} is not set); if the id was used before on that shard, this tenant gets its members, librarian and tokens back`,
    );
    return undefined;
  }
  let connection: Awaited<ReturnType<typeof connectShardServer>> | undefined;
  try {
    connection = await connectShardServer(ctx.env, shardId, shard, shard.master);
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT (SELECT COUNT(*) FROM members WHERE tenant_id = ?) AS members,
              (SELECT COUNT(*) FROM books WHERE tenant_id = ?) AS books,
              (SELECT COUNT(*) FROM loans WHERE tenant_id = ?) AS loans`,
      [tenantId, tenantId, tenantId],
    );
    const r = (rows[0] ?? {}) as Record<string, unknown>;
    return { members: Number(r.members ?? 0), books: Number(r.books ?? 0), loans: Number(r.loans ?? 0) };
  } catch (error) {
    ctx.warn(
      `could not check shard ${shardId} for rows an earlier tenant ${tenantId} left there: ${(error as Error).message.split('\n')[0]}`,
    );
    return undefined;
  } finally {
    connection?.destroy();
  }
}

export const anyRows = (c: RowCounts | undefined): c is RowCounts =>
  c !== undefined && c.members + c.books + c.loans > 0;
