/**
 * The one place mysql2 errors are classified (ARCHITECTURE.md rule 6).
 * - connection-level (refused, timed out, lost, pool full/closed, server going away, a master that
 *   turned read-only during a failover) → `DependencyUnavailableError`, retryable, 503 upstream;
 * - transaction conflicts (deadlock, lock wait timeout, a snapshot's row changed) → retried by the write runner;
 * - duplicate key → answered by the repository that expects it;
 * - a commit guard's stop, or a CHECK constraint refusing a guarded statement (commit-guard.ts)
 *   → `CommitGuardError` (commit-guard.ts, mysql-session.ts);
 * - a table this build's statements name that the server lacks (a shard never migrated) → `DependencyUnavailableError` naming the fix, 503 upstream,
 *   `answered`: a breaker counts it as the SQL outcome it is, not against the node;
 * - a statement the server ended at its own time limit (`max_statement_time`) → `DependencyUnavailableError`, not applied;
 * - a server out of disk space or memory (a full disk: binlog, tablespace, temporary files) →
 *   `DependencyUnavailableError` with `serverShortage`, counted against the node (503 upstream);
 * - everything else is a bug and passes through (500, logged).
 */
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import type { ServerShortage } from '../resilience/errors.js';

interface DriverError {
  code?: string;
  errno?: number;
  fatal?: boolean;
  message?: string;
  /** set on an error the server answered (mysql2), never on a socket's or the pool's */
  sqlState?: string;
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
/**
 * ER_CHECKREAD: a row changed since the transaction's snapshot was written to or locked, under
 * MariaDB's `innodb_snapshot_isolation` (ON by default in newer releases): the transaction must
 * start again, as after a deadlock (a review: a registration whose plain read of the counter row
 * came before another's commit answered 500)
 */
const CHECKREAD_ERRNO = 1020;
const DUPLICATE_KEY_ERRNO = 1062;
/** ER_SUBQUERY_NO_1_ROW: raised on purpose by a commit guard (commit-guard.ts) */
const SUBQUERY_NO_1_ROW_ERRNO = 1242;
const MARIADB_CHECK_FAILED_ERRNO = 4025;
const MYSQL_CHECK_VIOLATED_ERRNO = 3819;

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
  const errno = asDriverError(driverCause(error))?.errno;
  return errno === DEADLOCK_ERRNO || errno === CHECKREAD_ERRNO || isLockWaitTimeout(error);
}

/** `innodb_lock_wait_timeout` ran out on a row lock (the statement failed, the transaction lives) */
export function isLockWaitTimeout(error: unknown): boolean {
  return asDriverError(driverCause(error))?.errno === LOCK_WAIT_TIMEOUT_ERRNO;
}

/**
 * drizzle wraps driver errors (`DrizzleQueryError`) with the driver error as `cause`: followed to
 * the first error that is the driver's own (an `errno`, a `code`, or `fatal`). A driver error that
 * carries a `cause` of its own is classified by itself: mysql2's error for a command on a dead
 * connection ("Can't add new command when connection is in closed state": fatal, no errno, no
 * code) was once given the domain error it failed to roll back as its cause, and following that
 * classified a lost connection as an application error (a 409 answered 500).
 */
export function driverCause(error: unknown): unknown {
  let e = error;
  for (let i = 0; i < 3 && e instanceof Error && !isOwnDriverError(e) && e.cause; i++) {
    e = e.cause;
  }
  return e;
}

function isOwnDriverError(error: Error): boolean {
  const e = error as DriverError;
  return e.errno !== undefined || typeof e.code === 'string' || e.fatal === true;
}

/**
 * Which stop of a commit guard `error` is (CommitGuardError's `stop`): `no_row`, the guard's own
 * (the statement before it matched no row; no other statement of this adapter has a subquery); `check`, a CHECK constraint refused a guarded
 * statement's change (MariaDB ER_CONSTRAINT_FAILED 4025, MySQL ER_CHECK_CONSTRAINT_VIOLATED 3819).
 * Only statements of `commitWith` are judged so (commit-guard.ts, mysql-session.ts).
 */
export function commitGuardStopOf(error: unknown): 'no_row' | 'check' | undefined {
  const errno = asDriverError(driverCause(error))?.errno;
  if (errno === SUBQUERY_NO_1_ROW_ERRNO) return 'no_row';
  if (errno === MARIADB_CHECK_FAILED_ERRNO || errno === MYSQL_CHECK_VIOLATED_ERRNO) return 'check';
  return undefined;
}

export function isDuplicateKey(error: unknown, keyName?: string): boolean {
  const e = asDriverError(driverCause(error));
  if (e?.errno !== DUPLICATE_KEY_ERRNO) return false;
  return keyName === undefined || (e.message ?? '').includes(keyName);
}

/**
 * `error` (a connection-level one) as the node's unavailability. `commitSent`: the connection
 * failed after the write's COMMIT was sent, so the write may have been applied (an outside check
 * had 3 of 97 writes whose connection was killed in `Commit` applied, answered "not applied").
 * A read-only server refuses writes only (`writesOnly`).
 */
export function toUnavailable(
  node: string,
  error: unknown,
  { commitSent = false }: { commitSent?: boolean } = {},
): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  const readOnly = e?.errno === READ_ONLY_ERRNO;
  // this process out of descriptors: kept as the cause, so it is found by its code
  // (resilience/own-resources.ts), never by reading a message
  const ownShortage = e?.code === 'EMFILE' || e?.code === 'ENFILE';
  return new DependencyUnavailableError(
    node,
    readOnly
      ? 'the server is read-only (ER_OPTION_PREVENTS_STATEMENT)'
      : (e?.code ?? e?.message ?? 'connection failed'),
    { writesOnly: readOnly, outcomeUnknown: commitSent && !readOnly, ...(ownShortage ? { cause: e } : {}) },
  );
}

/**
 * ER_NO_SUCH_TABLE: the server's schema lacks a table a statement names (a shard never migrated).
 * Not ER_BAD_FIELD_ERROR: an unknown column is as likely a bug of the statement, which must stay
 * a 500 rather than a 503 its clients retry.
 */
const SCHEMA_MISSING_ERRNOS = new Set([1146]);

export function isSchemaMissing(error: unknown): boolean {
  const errno = asDriverError(driverCause(error))?.errno;
  return errno !== undefined && SCHEMA_MISSING_ERRNOS.has(errno);
}

/**
 * `error` (isSchemaMissing) as the node's unavailability (`answered`: not held against it). The
 * reason, for the log (never a client's answer), says how to fix it; the log line's
 * `dependency` (`mysql-master:shard-3`) names the shard.
 */
export function toSchemaMissing(node: string, error: unknown): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  return new DependencyUnavailableError(
    node,
    `${e?.code ?? 'schema'}: ${e?.message ?? 'schema missing'}: the shard's schema is missing or older than this build's migrations (run: npm run migrate -- --shard ${SHARD_PLACEHOLDER})`,
    { answered: true },
  );
}

/** where a reason made by a node that does not know its shard names it (breaker-node-guard.ts fills it in) */
export const SHARD_PLACEHOLDER = '<that shard>';

/** `error` (toSchemaMissing's, made where the shard is not known) with the shard named in its fix */
export function withShardNamed(error: unknown, shardId: string): unknown {
  if (!(error instanceof DependencyUnavailableError) || !error.reason.includes(SHARD_PLACEHOLDER))
    return error;
  return new DependencyUnavailableError(error.dependency, error.reason.replace(SHARD_PLACEHOLDER, shardId), {
    cause: error.cause,
    answered: error.answered,
  });
}

/** ER_BAD_FIELD_ERROR: a statement names a column the table lacks */
export function isUnknownColumn(error: unknown): boolean {
  return asDriverError(driverCause(error))?.errno === 1054;
}

/**
 * An unknown column (isUnknownColumn) on a shard whose schema is known to be behind this build's
 * (db/schema-watch.ts): the shard was not migrated, not a bug of the statement, so a retryable
 * 503 (`answered`: not held against the node) whose reason, for the log, names the fix. On a
 * shard up to date it stays a 500 (see SCHEMA_MISSING_ERRNOS).
 */
export function toSchemaBehind(
  node: string,
  shardId: string,
  error: unknown,
  { pending, first, inBuild }: { pending: number; first: string; inBuild: number },
): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  return new DependencyUnavailableError(
    node,
    `${e?.code ?? 'schema'}: ${e?.message ?? 'unknown column'}: the shard's schema is behind this build (${pending} of its ${inBuild} migrations not applied there, the first ${first}; run: npm run migrate -- --shard ${shardId})`,
    // an operator's fix, not a blip: clients come back after the watch's next look
    { answered: true, retryAfterSeconds: SCHEMA_RETRY_AFTER_SECONDS },
  );
}

/**
 * An unknown column on a replica of a shard whose master is not known to be behind: the replica
 * has not applied a migration's DDL yet (or never will: the master decides). `answered`, so the
 * router reads from the master and the replica stays admitted; a column the master lacks too (a
 * bug of the statement) then fails there, a 500 as before.
 */
export function toReplicaColumnMissing(node: string, error: unknown): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  return new DependencyUnavailableError(
    node,
    `${e?.code ?? 'schema'}: ${e?.message ?? 'unknown column'}: the replica lacks a column this build reads (a migration's DDL not applied there yet?)`,
    { answered: true },
  );
}

/** Retry-After of a statement refused for a schema behind (schema-watch.ts looks every 30 s) */
export const SCHEMA_RETRY_AFTER_SECONDS = 30;

/**
 * The server ended the statement at its own time limit: MariaDB's ER_STATEMENT_TIMEOUT
 * (`max_statement_time`), MySQL's ER_QUERY_TIMEOUT (`max_execution_time`, SELECTs only). An
 * operator's limit, not a bug (an outside check set `max_statement_time` to 2 ms: 7 of ~1,250
 * requests answered 500).
 */
const STATEMENT_TIMEOUT_ERRNOS = new Set([1969, 3024]);

export function isStatementTimeout(error: unknown): boolean {
  const errno = asDriverError(driverCause(error))?.errno;
  return errno !== undefined && STATEMENT_TIMEOUT_ERRNOS.has(errno);
}

/**
 * `error` (isStatementTimeout) as a retryable 503. Not `answered`: a statement ended at a time
 * limit says the node is slow (or waits on a lock), so the breaker counts it as a failure, never
 * as a success that would close it half-open (a review: a limit under the call timeout made every
 * write under a global read lock a "success"). Never `outcomeUnknown`: MariaDB does not end a
 * COMMIT at `max_statement_time` (a review: `SET STATEMENT max_statement_time=0.000001 FOR COMMIT`
 * committed 5 of 5) and stops a batch at the statement it ended, so the COMMIT after it never
 * runs; MySQL's limit ends SELECTs only.
 */
export function toStatementTimeout(node: string, error: unknown): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  return new DependencyUnavailableError(
    node,
    `${e?.code ?? 'statement timeout'} (${e?.errno}): the server ended the statement at its time limit (max_statement_time / max_execution_time)`,
    { endedAtTimeLimit: true },
  );
}

/**
 * The server refused a new connection for a limit on connections, not for being down:
 * ER_CON_COUNT_ERROR 1040 (`max_connections`), ER_TOO_MANY_USER_CONNECTIONS 1203 (the global
 * `max_user_connections`), ER_USER_LIMIT_REACHED 1226 (the account's `MAX_USER_CONNECTIONS` or
 * `MAX_CONNECTIONS_PER_HOUR`). The connections already open go on answering.
 */
const CONNECTION_LIMIT_ERRNOS = new Set([1040, 1203, 1226]);

export function isConnectionLimit(error: unknown): boolean {
  const errno = asDriverError(driverCause(error))?.errno;
  return errno !== undefined && CONNECTION_LIMIT_ERRNOS.has(errno);
}

/** MariaDB's ER_CONNECTION_KILLED, sent to a connection an operator or wait_timeout ended */
const CONNECTION_KILLED_ERRNO = 1927;
const LOST_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'EPIPE', 'ECONNRESET', 'ER_CONNECTION_KILLED']);

/**
 * The connection itself was gone (killed on the server while idle in the pool, closed by its
 * `wait_timeout`, reset), as opposed to a server that refuses or cannot be reached.
 */
export function isLostConnection(error: unknown): boolean {
  const e = asDriverError(driverCause(error));
  if (!e) return false;
  if (e.errno === CONNECTION_KILLED_ERRNO || (e.code && LOST_CODES.has(e.code))) return true;
  return typeof e.message === 'string' && e.message.includes('connection is in closed state');
}

/**
 * The server is out of a resource of its own, server-wide (not a bug of the statement, and not
 * this process's: resilience/own-resources.ts), by the server's error code:
 * - its storage (`disk_space`, `disk_write`): ER_RECORD_FILE_FULL 1114 (InnoDB could not grow a
 *   tablespace: "The table 'members' is full"), ER_DISK_FULL 1021 (an engine's write failed with
 *   ENOSPC: MariaDB's handler::print_error), mysys EE_DISK_FULL 20, and the file-write errors
 *   EE_WRITE 3 and ER_ERROR_ON_WRITE 1026 (a binlog, temporary or data file it could not write;
 *   on a full disk `(Errcode: 28 "No space left on device")`). These two carry the OS error
 *   only in their text: read there (28 ENOSPC, 122 EDQUOT) to tell `disk_space` from another
 *   write failure (EIO, EROFS), never to decide whether it is one;
 * - its memory (`memory`): mysys EE_OUTOFMEMORY 5, ER_OUTOFMEMORY 1037, ER_OUT_OF_RESOURCES
 *   1041. Not ER_OUT_OF_SORTMEMORY 1038: a session's `sort_buffer_size` too small for one query,
 *   which would open the node's breaker for every tenant for one statement's sake.
 * An outside check filled a master's disk (MariaDB 10.11 on a small tmpfs): EE_WRITE and
 * ER_ERROR_ON_WRITE on the binlog, ER_RECORD_FILE_FULL on `members` and `idempotency_keys`,
 * each answered 500 and counted as the node's success, its breaker closed while the disk
 * stayed full. The mysys codes (under 1000) count only in the server's answer (`sqlState`): a
 * socket's errno is another number space.
 */
const RECORD_FILE_FULL_ERRNO = 1114;
const SHORTAGE_ERRNOS: ReadonlyMap<number, ServerShortage | 'file_write'> = new Map<
  number,
  ServerShortage | 'file_write'
>([
  [RECORD_FILE_FULL_ERRNO, 'disk_space'],
  [1021, 'disk_space'],
  [20, 'disk_space'],
  [3, 'file_write'],
  [1026, 'file_write'],
  [5, 'memory'],
  [1037, 'memory'],
  [1041, 'memory'],
]);
/** ENOSPC, EDQUOT (Linux), as MariaDB prints them: `(Errcode: 28 "…")`, `(errno: 28 "…")` */
const NO_SPACE_OS_ERRNOS = new Set([28, 122]);
const OS_ERRNO_IN_TEXT = /\((?:Errcode|errno): (\d+)\b/;

/** what the server is out of, by its error code (see above); undefined for any other error */
export function serverShortageOf(error: unknown): ServerShortage | undefined {
  const e = asDriverError(driverCause(error));
  if (e?.errno === undefined || (e.errno < 1000 && typeof e.sqlState !== 'string')) return undefined;
  const kind = SHORTAGE_ERRNOS.get(e.errno);
  if (kind !== 'file_write') return kind;
  const os = OS_ERRNO_IN_TEXT.exec(e.message ?? '');
  return os && NO_SPACE_OS_ERRNOS.has(Number(os[1])) ? 'disk_space' : 'disk_write';
}

const SHORTAGE_REASONS: Readonly<Record<ServerShortage, string>> = {
  disk_space: 'the server is out of disk space',
  disk_write: 'the server could not write its files',
  memory: 'the server is out of memory',
};

/**
 * `error` (serverShortageOf) as the node's unavailability, counted against it: its disk's with
 * the read-only server's refusals (`writesOnly`: its reads still answer, so only a write that
 * commits closes its breaker), its memory's as any failure. Not applied, as the transaction
 * around the statement is rolled back, except when it came after the write's COMMIT was sent
 * (`commitSent`): MariaDB reports a binlog write error at COMMIT also for a transaction it has
 * committed (a binlog rotation that fails after the group commit gives the leader
 * ER_ERROR_ON_WRITE, its `delayed_error`, sql/log.cc), so the outcome is unknown there, as for a
 * connection lost then. ER_RECORD_FILE_FULL is the engine refusing a row, a statement's error
 * that a COMMIT does not raise; in a COMMIT's round trip (commitWith) it stopped the batch before
 * the COMMIT (statement-batcher.ts): not applied either way.
 */
export function toServerShortage(
  node: string,
  error: unknown,
  { commitSent = false }: { commitSent?: boolean } = {},
): DependencyUnavailableError {
  const e = asDriverError(driverCause(error));
  const shortage = serverShortageOf(error) ?? 'disk_write';
  const mayHaveApplied = commitSent && e?.errno !== RECORD_FILE_FULL_ERRNO;
  return new DependencyUnavailableError(
    node,
    `${SHORTAGE_REASONS[shortage]}: ${e?.code ?? 'error'} (${e?.errno}): ${e?.message ?? String(error)}${mayHaveApplied ? ' (after the COMMIT was sent: it may have applied)' : ''}`,
    { serverShortage: shortage, writesOnly: shortage !== 'memory', outcomeUnknown: mayHaveApplied },
  );
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
