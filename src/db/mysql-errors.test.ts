import { describe, expect, it } from 'vitest';
import {
  commitGuardStopOf,
  driverCause,
  isConnectionError,
  isConnectionLimit,
  isDuplicateKey,
  isLockWaitTimeout,
  isLostConnection,
  isSchemaMissing,
  isStatementTimeout,
  isTransactionConflict,
  toSchemaMissing,
  toStatementTimeout,
  toUnavailable,
} from './mysql-errors.js';

function driverError(fields: { code?: string; errno?: number; fatal?: boolean; message?: string }) {
  return Object.assign(new Error(fields.message ?? 'driver error'), fields);
}

describe('mysql error classification', () => {
  it('counts refused, lost, fatal, name-lookup, read-only and pool errors as a connection problem', () => {
    for (const e of [
      driverError({ code: 'ECONNREFUSED' }),
      driverError({ code: 'ENOTFOUND' }),
      driverError({ code: 'EAI_AGAIN' }),
      driverError({ code: 'PROTOCOL_CONNECTION_LOST' }),
      driverError({ code: 'SOMETHING_NEW', fatal: true }),
      driverError({ code: 'ER_OPTION_PREVENTS_STATEMENT', errno: 1290 }),
      driverError({ message: 'Pool is closed.' }),
      driverError({ message: 'Queue limit reached.' }),
    ]) {
      expect(isConnectionError(e), e.message + (e as { code?: string }).code).toBe(true);
    }
  });

  it('does not count a statement error, a duplicate key or an application error as one', () => {
    expect(isConnectionError(driverError({ code: 'ER_PARSE_ERROR', errno: 1064 }))).toBe(false);
    expect(isConnectionError(driverError({ code: 'ER_DUP_ENTRY', errno: 1062 }))).toBe(false);
    expect(isConnectionError(new Error('Pool is closed soon'))).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });

  it('finds the driver error under drizzle’s wrapper', () => {
    const wrapped = new Error('Failed query', { cause: driverError({ code: 'ECONNRESET' }) });
    expect(isConnectionError(wrapped)).toBe(true);
    expect(driverCause(wrapped)).toBe((wrapped as { cause: unknown }).cause);
  });

  it('classifies a driver error by itself even when it carries a cause (the closed-state error of a ROLLBACK)', () => {
    // mysql2's error for a command on a dead connection: fatal, no errno, no code
    const closed = () =>
      driverError({ message: "Can't add new command when connection is in closed state", fatal: true });
    const withCause = Object.assign(closed(), { cause: new Error('rollback') });
    expect(driverCause(withCause)).toBe(withCause);
    expect(isConnectionError(withCause)).toBe(true);
    expect(isLostConnection(withCause)).toBe(true);
    const coded = Object.assign(driverError({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }), {
      cause: new Error('refused'),
    });
    expect(isConnectionError(coded)).toBe(true);
    expect(isLostConnection(coded)).toBe(true);
  });

  it('tells a lock wait timeout and a deadlock apart; both are conflicts', () => {
    const wait = driverError({ errno: 1205 });
    const deadlock = driverError({ errno: 1213 });
    expect(isLockWaitTimeout(wait)).toBe(true);
    expect(isLockWaitTimeout(deadlock)).toBe(false);
    expect(isTransactionConflict(wait)).toBe(true);
    expect(isTransactionConflict(deadlock)).toBe(true);
    expect(isTransactionConflict(driverError({ errno: 1020 }))).toBe(true);
    expect(isTransactionConflict(driverError({ errno: 1062 }))).toBe(false);
  });

  it('matches a duplicate key by its key name when one is given', () => {
    const e = driverError({ errno: 1062, message: "Duplicate entry 'x' for key 'members_email'" });
    expect(isDuplicateKey(e)).toBe(true);
    expect(isDuplicateKey(e, 'members_email')).toBe(true);
    expect(isDuplicateKey(e, 'books_isbn')).toBe(false);
  });

  it("tells a commit guard's stop (no row) from a CHECK constraint's refusal, MariaDB's and MySQL's", () => {
    expect(commitGuardStopOf(driverError({ errno: 1242 }))).toBe('no_row');
    expect(commitGuardStopOf(driverError({ errno: 4025 }))).toBe('check');
    expect(commitGuardStopOf(driverError({ errno: 3819 }))).toBe('check');
    expect(commitGuardStopOf(driverError({ errno: 1062 }))).toBeUndefined();
  });

  it('tells a connection that is gone (killed, reset, closed) from a server that refuses or cannot be reached', () => {
    for (const e of [
      driverError({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true }),
      driverError({ code: 'EPIPE', fatal: true }),
      driverError({ code: 'ECONNRESET', fatal: true }),
      driverError({ code: 'ER_CONNECTION_KILLED', errno: 1927, fatal: true }),
      driverError({ message: "Can't add new command when connection is in closed state" }),
      new Error('Failed query', { cause: driverError({ code: 'PROTOCOL_CONNECTION_LOST' }) }),
    ])
      expect(isLostConnection(e), e.message).toBe(true);
    for (const e of [
      driverError({ code: 'ECONNREFUSED' }),
      driverError({ code: 'ETIMEDOUT' }),
      driverError({ code: 'ER_CON_COUNT_ERROR', errno: 1040 }),
      driverError({ code: 'ER_OPTION_PREVENTS_STATEMENT', errno: 1290 }),
      driverError({ code: 'ER_DUP_ENTRY', errno: 1062 }),
    ])
      expect(isLostConnection(e), e.message).toBe(false);
  });

  it('says a write lost after its COMMIT was sent may have applied, and a read-only server refuses writes only', () => {
    const lost = driverError({ code: 'PROTOCOL_CONNECTION_LOST', fatal: true });
    expect(toUnavailable('m', lost).outcomeUnknown).toBe(false);
    expect(toUnavailable('m', lost, { commitSent: true }).outcomeUnknown).toBe(true);
    expect(toUnavailable('m', lost).writesOnly).toBe(false);
    const readOnly = toUnavailable('m', driverError({ code: 'ER_OPTION_PREVENTS_STATEMENT', errno: 1290 }), {
      commitSent: true,
    });
    expect(readOnly.writesOnly).toBe(true);
    // the server refused the statement: nothing applied
    expect(readOnly.outcomeUnknown).toBe(false);
    expect(readOnly.message).toBe('m: the server is read-only (ER_OPTION_PREVENTS_STATEMENT)');
  });

  it('tells a table the server lacks (a shard not migrated) apart, as an answer of the node naming the fix', () => {
    const table = driverError({
      code: 'ER_NO_SUCH_TABLE',
      errno: 1146,
      message: "Table 'x.members' doesn't exist",
    });
    const column = driverError({ code: 'ER_BAD_FIELD_ERROR', errno: 1054, message: "Unknown column 'a'" });
    for (const e of [table, new Error('wrapped', { cause: table })]) expect(isSchemaMissing(e)).toBe(true);
    // an unknown column may be a bug of the statement: a 500, not a 503 to retry
    expect(isSchemaMissing(column)).toBe(false);
    for (const e of [
      driverError({ code: 'ER_PARSE_ERROR', errno: 1064 }),
      driverError({ code: 'ECONNREFUSED' }),
    ])
      expect(isSchemaMissing(e)).toBe(false);
    const unavailable = toSchemaMissing('127.0.0.1:3316/x', table);
    expect(unavailable.answered).toBe(true);
    expect(unavailable.reason).toBe(
      "ER_NO_SUCH_TABLE: Table 'x.members' doesn't exist: the shard's schema is missing or older than this build's migrations (run: npm run migrate -- --shard <that shard>)",
    );
  });

  it('a statement the server ended at its time limit is a retryable unavailability, not a connection problem', () => {
    for (const e of [
      driverError({ code: 'ER_STATEMENT_TIMEOUT', errno: 1969 }),
      driverError({ code: 'ER_QUERY_TIMEOUT', errno: 3024 }),
    ]) {
      expect([isStatementTimeout(e), isConnectionError(e)]).toEqual([true, false]);
    }
    expect(isStatementTimeout(driverError({ code: 'ER_QUERY_INTERRUPTED', errno: 1317 }))).toBe(false);
    // counted against the node (no `answered`), and never "may have applied"
    const e = toStatementTimeout('node', driverError({ code: 'ER_STATEMENT_TIMEOUT', errno: 1969 }));
    expect(e).toMatchObject({ answered: false, outcomeUnknown: false });
  });

  it("tells a server's limit on connections (the server's, a user's, an account's) from a server that is down", () => {
    for (const e of [
      driverError({ code: 'ER_CON_COUNT_ERROR', errno: 1040, fatal: true }),
      driverError({ code: 'ER_TOO_MANY_USER_CONNECTIONS', errno: 1203, fatal: true }),
      driverError({ code: 'ER_USER_LIMIT_REACHED', errno: 1226, fatal: true }),
      new Error('Failed query', { cause: driverError({ code: 'ER_CON_COUNT_ERROR', errno: 1040 }) }),
    ])
      expect(isConnectionLimit(e), e.message).toBe(true);
    for (const e of [
      driverError({ code: 'ECONNREFUSED' }),
      driverError({ code: 'ER_SERVER_SHUTDOWN', errno: 1053 }),
      driverError({ code: 'ER_ACCESS_DENIED_ERROR', errno: 1045 }),
    ])
      expect(isConnectionLimit(e), e.message).toBe(false);
  });
});
