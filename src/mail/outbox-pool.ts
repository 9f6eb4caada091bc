/**
 * The mysql2 pool the email worker keeps per shard master. Session settings are applied ONCE per
 * physical connection, when the pool creates it and before it is handed out (mysql2 runs a
 * connection's commands in order), so a transaction is just BEGIN … COMMIT:
 * - `SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED`: every transaction on the
 *   connection is READ COMMITTED (MariaDB 10.11 and MySQL 8 alike): locking reads lock only the
 *   rows they return (no gap locks), and a plain SELECT sees the latest committed rows.
 * - `innodb_lock_wait_timeout = 1`: a statement waiting on a row lock fails fast with a SQL
 *   error (not a breaker failure).
 * - the pinned `sql_mode` (db/session-sql-mode.ts): mysql2 escapes values with backslashes,
 *   which a server with `NO_BACKSLASH_ESCAPES` would not read as escapes.
 * A connection on which either SET fails is destroyed: whatever was queued behind it fails (a
 * retryable error for the caller) and the pool opens a fresh one next time; no transaction ever
 * runs with the server defaults (REPEATABLE READ, 50 s).
 *
 * `trace: false` skips mysql2's stack capture per query (errors lose the caller's frames).
 */
import { createPool, type Pool } from 'mysql2/promise';
import { SET_SESSION_SQL_MODE } from '../db/session-sql-mode.js';

export interface OutboxPoolOptions {
  host: string;
  port: number;
  database: string;
  user: string;
  password: string | undefined;
  connectionLimit?: number;
  queueLimit?: number;
  connectTimeoutMs?: number;
  lockWaitTimeoutSeconds?: number;
}

export function createOutboxPool({
  host,
  port,
  database,
  user,
  password,
  connectionLimit = 20,
  queueLimit = 100,
  connectTimeoutMs = 2000,
  lockWaitTimeoutSeconds = 1,
}: OutboxPoolOptions): Pool {
  const pool = createPool({
    host,
    port,
    database,
    user,
    password,
    connectionLimit,
    queueLimit,
    connectTimeout: connectTimeoutMs,
    enableKeepAlive: true,
    dateStrings: false,
    trace: false,
  });
  pool.pool.on('connection', (connection) => {
    const destroyOnError = (error: unknown) => {
      if (error) connection.destroy();
    };
    connection.query(
      `${SET_SESSION_SQL_MODE}, innodb_lock_wait_timeout = ${Math.max(1, Math.floor(lockWaitTimeoutSeconds))}`,
      destroyOnError,
    );
    connection.query('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED', destroyOnError);
  });
  return pool;
}
