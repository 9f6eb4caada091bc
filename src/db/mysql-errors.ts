/**
 * The one place mysql2 errors are classified (ARCHITECTURE.md rule 6).
 * - connection-level (refused, timed out, lost, pool full/closed, server going away, a master that
 *   turned read-only during a failover) → `DependencyUnavailableError`, retryable, 503 upstream;
 * - transaction conflicts (deadlock, lock wait timeout) → retried by the write runner;
 * - duplicate key → answered by the repository that expects it;
 * - a commit guard's stop (commit-guard.ts) → `CommitGuardError` (commit-guard.ts, mysql-session.ts);
 * - everything else is a bug or a schema problem and passes through (500, logged).
 */
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';

interface DriverError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  message?: string;
}

const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_TOO_MANY_USER_CONNECTIONS',
]);
const POOL_MESSAGES = new Set(['Queue limit reached.', 'Pool is closed.', 'No connections available.']);
/** ER_OPTION_PREVENTS_STATEMENT: e.g. a write reached a read_only server (master demoted) */
const READ_ONLY_ERRNO = 1290;
const DEADLOCK_ERRNO = 1213;
const LOCK_WAIT_TIMEOUT_ERRNO = 1205;
const DUPLICATE_KEY_ERRNO = 1062;
/** ER_SUBQUERY_NO_1_ROW: raised on purpose by a commit guard (commit-guard.ts) */
const SUBQUERY_NO_1_ROW_ERRNO = 1242;

function asDriverError(error: unknown): DriverError | undefined {
  return typeof error === 'object' && error !== null ? (error as DriverError) : undefined;
}

export function isConnectionError(error: unknown): boolean {
  const e = asDriverError(driverCause(error));
  if (!e) return false;
  if (e.fatal === true) return true;
  if (e.code && CONNECTION_CODES.has(e.code)) return true;
  if (e.errno === READ_ONLY_ERRNO) return true;
  return typeof e.message === 'string' && POOL_MESSAGES.has(e.message);
}

export function isTransactionConflict(error: unknown): boolean {
  return asDriverError(driverCause(error))?.errno === DEADLOCK_ERRNO || isLockWaitTimeout(error);
}

/** `innodb_lock_wait_timeout` ran out on a row lock (the statement failed, the transaction lives) */
export function isLockWaitTimeout(error: unknown): boolean {
  return asDriverError(driverCause(error))?.errno === LOCK_WAIT_TIMEOUT_ERRNO;
}

/** drizzle wraps driver errors (`DrizzleQueryError`) with the driver error as `cause` */
export function driverCause(error: unknown): unknown {
  let e = error;
  for (
    let i = 0;
    i < 3 && e instanceof Error && (e as { errno?: number }).errno === undefined && e.cause;
    i++
  ) {
    e = e.cause;
  }
  return e;
}

/** a commit guard's stop (commit-guard.ts): no other statement of this adapter has a subquery */
export function isCommitGuardStop(error: unknown): boolean {
  return asDriverError(driverCause(error))?.errno === SUBQUERY_NO_1_ROW_ERRNO;
}

export function isDuplicateKey(error: unknown, keyName?: string): boolean {
  const e = asDriverError(driverCause(error));
  if (e?.errno !== DUPLICATE_KEY_ERRNO) return false;
  return keyName === undefined || (e.message ?? '').includes(keyName);
}

export function toUnavailable(node: string, error: unknown): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  return new DependencyUnavailableError(node, e?.code ?? e?.message ?? 'connection failed');
}

/**
 * A database error the code did not expect, stripped of query parameters (drizzle puts them in
 * its message, and they can hold password hashes and emails) before it reaches a log.
 */
export class DatabaseError extends Error {
  readonly code: string | undefined;
  readonly errno: number | undefined;

  constructor(node: string, error: unknown) {
    const e = asDriverError(driverCause(error));
    const query = (error as { query?: unknown }).query;
    super(
      `${node}: ${e?.code ?? 'error'}${e?.errno ? ` (${e.errno})` : ''}: ${e?.message ?? String(error)}` +
        (typeof query === 'string' ? ` — in: ${query.slice(0, 300)}` : ''),
    );
    this.name = 'DatabaseError';
    this.code = e?.code;
    this.errno = e?.errno;
  }
}

/** Errors raised by the driver or drizzle (as opposed to errors thrown by application code). */
export function isDriverError(error: unknown): boolean {
  const e = asDriverError(driverCause(error));
  return (
    e !== undefined &&
    (typeof e.errno === 'number' || typeof e.code === 'string' || 'query' in (error as object))
  );
}
