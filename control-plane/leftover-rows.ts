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
import { NO_SUCH_TABLE_ERRNO } from './schema-state.js';
import { connectShardServer } from './tenant-rows.js';

export interface RowCounts {
  members: number;
  books: number;
  loans: number;
}

/**
 * The rows of `tenantId` on the shard's master, or why they could not be counted; `noSchema`
 * when the server answered that the tables are not there (the shard was never migrated).
 */
export type RowCheck = RowCounts | { unchecked: string; noSchema?: true };

/** Counts the rows; a missing password or a failed check is `{ unchecked: reason }`, never thrown. */
export async function checkLeftoverRows(
  env: CtlContext['env'],
  tenantId: string,
  shardId: string,
  shard: ShardConfig,
): Promise<RowCheck> {
  if (shardPassword(env, shard.passwordEnv) === undefined)
    return { unchecked: `no database password (${shard.passwordEnv ?? 'SHARDGATE_DB_PASSWORD'} is not set)` };
  let connection: Awaited<ReturnType<typeof connectShardServer>> | undefined;
  try {
    connection = await connectShardServer(env, shardId, shard, shard.master);
    const [rows] = await connection.query<RowDataPacket[]>(
      `SELECT (SELECT COUNT(*) FROM members WHERE tenant_id = ?) AS members,
              (SELECT COUNT(*) FROM books WHERE tenant_id = ?) AS books,
              (SELECT COUNT(*) FROM loans WHERE tenant_id = ?) AS loans`,
      [tenantId, tenantId, tenantId],
    );
    const r = (rows[0] ?? {}) as Record<string, unknown>;
    return { members: Number(r.members ?? 0), books: Number(r.books ?? 0), loans: Number(r.loans ?? 0) };
  } catch (error) {
    const unchecked = (error as Error).message.split('\n')[0] ?? 'the check failed';
    return (error as { errno?: number }).errno === NO_SUCH_TABLE_ERRNO
      ? { unchecked, noSchema: true }
      : { unchecked };
  } finally {
    connection?.destroy();
  }
}

/**
 * `tenants create`'s warning of a check that could not count the rows (`tenants remove` says it
 * in its own line: idAfterRemoval).
 */
export function uncheckedWarning(tenantId: string, shardId: string, reason: string): string {
  return reason.startsWith('no database password')
    ? `did not check shard ${shardId} for rows an earlier tenant ${tenantId} left there: ${reason}; if the id was used before on that shard, this tenant gets its members, librarian and tokens back`
    : `could not check shard ${shardId} for rows an earlier tenant ${tenantId} left there: ${reason}`;
}

export const anyRows = (c: RowCheck | undefined): c is RowCounts =>
  c !== undefined && !('unchecked' in c) && c.members + c.books + c.loans > 0;
