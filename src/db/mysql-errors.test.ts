import { describe, expect, it } from 'vitest';
import {
  driverCause,
  isCommitGuardStop,
  isConnectionError,
  isDuplicateKey,
  isLockWaitTimeout,
  isTransactionConflict,
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

  it('tells a lock wait timeout and a deadlock apart; both are conflicts', () => {
    const wait = driverError({ errno: 1205 });
    const deadlock = driverError({ errno: 1213 });
    expect(isLockWaitTimeout(wait)).toBe(true);
    expect(isLockWaitTimeout(deadlock)).toBe(false);
    expect(isTransactionConflict(wait)).toBe(true);
    expect(isTransactionConflict(deadlock)).toBe(true);
    expect(isTransactionConflict(driverError({ errno: 1062 }))).toBe(false);
  });

  it('matches a duplicate key by its key name when one is given', () => {
    const e = driverError({ errno: 1062, message: "Duplicate entry 'x' for key 'members_email'" });
    expect(isDuplicateKey(e)).toBe(true);
    expect(isDuplicateKey(e, 'members_email')).toBe(true);
    expect(isDuplicateKey(e, 'books_isbn')).toBe(false);
    expect(isCommitGuardStop(driverError({ errno: 1242 }))).toBe(true);
  });
});
