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
  serverShortageOf,
  toSchemaMissing,
  toServerShortage,
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

  describe('a server out of disk space or memory', () => {
    /** as mysql2 rejects with an error the server answered: its message is the server's */
    const serverError = (errno: number, code: string, sqlMessage: string, sqlState = 'HY000') =>
      Object.assign(new Error(sqlMessage), { errno, code, sqlState, sqlMessage });
    // what an outside check got from a MariaDB 10.11 master whose tmpfs was full
    const binlogFull = serverError(
      3,
      'EE_WRITE',
      'Error writing file \'/tmp/m/mysql-bin.000003\' (Errcode: 28 "No space left on device")',
    );
    const binlogOnWrite = serverError(
      1026,
      'ER_ERROR_ON_WRITE',
      'Error writing file \'/tmp/m/mysql-bin\' (errno: 28 "No space left on device")',
    );
    const tableFull = serverError(1114, 'ER_RECORD_FILE_FULL', "The table 'members' is full");
    const diskFull = serverError(
      1021,
      'ER_DISK_FULL',
      'Disk full (./shardgate/loans.ibd); waiting for someone to free some space... (errno: 28 "No space left on device")',
    );

    it('is told by the server error code, through drizzle’s wrapper too', () => {
      for (const e of [binlogFull, binlogOnWrite, tableFull, diskFull])
        for (const wrapped of [e, new Error('Failed query: insert into …', { cause: e })])
          expect(serverShortageOf(wrapped), e.message).toBe('disk_space');
      // a file the server could not write for another reason than space: its disk still
      expect(
        serverShortageOf(
          serverError(1026, 'ER_ERROR_ON_WRITE', 'Error writing file \'./mysql-bin\' (errno: 5 "I/O error")'),
        ),
      ).toBe('disk_write');
      expect(serverShortageOf(serverError(3, 'EE_WRITE', "Error writing file 'x' (Errcode: 30)"))).toBe(
        'disk_write',
      );
      for (const e of [
        serverError(5, 'EE_OUTOFMEMORY', 'Out of memory (Needed 65536 bytes)'),
        serverError(
          1037,
          'ER_OUTOFMEMORY',
          'Out of memory; restart server and try again (needed 1024 bytes)',
          'HY001',
        ),
        serverError(
          1041,
          'ER_OUT_OF_RESOURCES',
          'Out of memory; check if mysqld or some other process uses all available memory',
        ),
      ])
        expect(serverShortageOf(e), e.message).toBe('memory');
    });

    it('is not a bug of the statement nor anything else: no other error, and no text, makes one', () => {
      for (const e of [
        serverError(
          1062,
          'ER_DUP_ENTRY',
          "Duplicate entry 'No space left on device' for key 'members_email'",
        ),
        // a session's sort buffer too small for one query: not the server's shortage
        serverError(
          1038,
          'ER_OUT_OF_SORTMEMORY',
          'Out of sort memory, consider increasing server sort buffer size',
          'HY001',
        ),
        serverError(
          1030,
          'ER_GET_ERRNO',
          'Got error 28 "No space left on device" from storage engine InnoDB',
        ),
        // a socket's errno is no server error code, even one of the same number
        Object.assign(new Error('write EIO'), { errno: 5, code: 'EIO', syscall: 'write' }),
        driverError({ code: 'ECONNREFUSED' }),
        new Error('The table is full'),
      ])
        expect(serverShortageOf(e), e.message).toBeUndefined();
      for (const e of [binlogFull, tableFull]) expect(isConnectionError(e)).toBe(false);
    });

    it('a statement that failed so: counted against the node on writes (as a read-only one), not applied', () => {
      for (const e of [binlogFull, binlogOnWrite, tableFull, diskFull]) {
        const unavailable = toServerShortage('mysql-master:shard-1', e);
        expect(unavailable, e.message).toMatchObject({
          serverShortage: 'disk_space',
          writesOnly: true,
          outcomeUnknown: false,
          answered: false,
          retryable: true,
        });
        // the log line (never a client's answer) names the cause and the server's words
        expect(unavailable.message).toContain('mysql-master:shard-1: the server is out of disk space: ');
        expect(unavailable.message).toContain(e.message);
      }
      // memory fails reads too: an ordinary failure of the node
      const memory = toServerShortage('m', serverError(1041, 'ER_OUT_OF_RESOURCES', 'Out of memory'));
      expect(memory).toMatchObject({ serverShortage: 'memory', writesOnly: false, outcomeUnknown: false });
    });

    it('at the COMMIT: may have applied (MariaDB reports a failed binlog rotation to a committed write), except a row the engine refused', () => {
      for (const e of [binlogFull, binlogOnWrite, diskFull])
        expect(toServerShortage('m', e, { commitSent: true }).outcomeUnknown, e.message).toBe(true);
      // "The table is full" is a statement's error: in the COMMIT's round trip it stopped the
      // batch before the COMMIT
      expect(toServerShortage('m', tableFull, { commitSent: true }).outcomeUnknown).toBe(false);
    });
  });
});
