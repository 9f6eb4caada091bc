import type { MySqlDatabase } from 'drizzle-orm/mysql-core';
import type { MySql2PreparedQueryHKT, MySql2QueryResultHKT } from 'drizzle-orm/mysql2';

/** A drizzle handle bound to one connection: the session's `db`, or a transaction on it. */
export type Queryable = MySqlDatabase<MySql2QueryResultHKT, MySql2PreparedQueryHKT>;

/** affected (matched) rows of an UPDATE/DELETE through drizzle's mysql2 driver */
export function affectedRows(result: unknown): number {
  const header = Array.isArray(result) ? result[0] : result;
  return Number((header as { affectedRows?: number } | undefined)?.affectedRows ?? 0);
}
