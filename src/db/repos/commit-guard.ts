/**
 * A guard of a transaction's COMMIT, in plain SQL of MariaDB and MySQL: a statement that FAILS
 * unless the statement right before it on the connection matched exactly one row. Issued in the
 * same turn as that statement, it joins its multi-statement round trip (StatementBatcher), and
 * the server stops the round trip there — before a COMMIT sent with it by `tx.commitWith` — when,
 * say, no free copy was taken. The write then rolls back, and it took no round trip of its own to
 * learn that the condition failed.
 *
 * How: a scalar subquery that returns two rows raises ER_SUBQUERY_NO_1_ROW (1242), which
 * `commitGuardStopOf` (mysql-errors.ts) recognises; `ROW_COUNT()` is the previous statement's
 * matched rows (mysql2 connects with CLIENT_FOUND_ROWS). The user variable is never read.
 * Not `DO (…)`: DO turns the error into a warning; not `SIGNAL`: outside stored programs it is
 * MariaDB's alone. Nothing of it reaches the binlog (the variable is read by no statement), and
 * MySQL 8 has every part of it, though only MariaDB runs it in the test suite (the local stack).
 */
import { CommitGuardError } from '../../domain/data-access.js';
import { commitGuardStopOf } from '../mysql-errors.js';
import type { SqlContext } from './sql-context.js';

export const STOP_UNLESS_ONE_ROW =
  'SET @shardgate_guard = (SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE ROW_COUNT() <> 1)';

/**
 * `statement`, issued by the caller just now, followed by its guard in the same turn (so the two
 * are adjacent in one round trip: both answer no rows). Rejects with CommitGuardError(`stopped`)
 * when the statement matched no row (stop `no_row`) or a CHECK constraint refused its change
 * (stop `check`); with the statement's own error when it failed otherwise.
 */
export async function guarded(sql: SqlContext, statement: Promise<unknown>, stopped: string): Promise<void> {
  const guard = sql.client.query({ sql: STOP_UNLESS_ONE_ROW });
  try {
    await Promise.all([statement, guard]);
  } catch (error) {
    const stop = commitGuardStopOf(error);
    throw stop ? new CommitGuardError(stopped, stop) : error;
  }
}
