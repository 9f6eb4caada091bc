import { DrizzleQueryError } from 'drizzle-orm';
import { describe, expect, it } from 'vitest';
import { loggableError } from './loggable-error.js';

describe('loggableError', () => {
  it("keeps a query error's statement, codes and frames, never its values", () => {
    const driver = Object.assign(new Error("Duplicate entry 'x' for key 'PRIMARY'"), {
      code: 'ER_DUP_ENTRY',
      errno: 1062,
      sqlState: '23000',
      sql: "insert into members values ('acme', 'alice@example.com', '$argon2id$v=19$secret')",
    });
    const error = new DrizzleQueryError(
      'insert into members values (?, ?, ?)',
      ['acme', 'alice@example.com', '$argon2id$v=19$secret'],
      driver,
    );
    const logged = loggableError(error);
    const text = JSON.stringify(logged);
    expect(text).not.toContain('alice@example.com');
    expect(text).not.toContain('argon2id');
    expect(logged).toMatchObject({
      type: 'DrizzleQueryError',
      message: 'Failed query: insert into members values (?, ?, ?)',
      cause: { code: 'ER_DUP_ENTRY', errno: 1062, sqlState: '23000' },
    });
    expect(typeof logged === 'object' && logged.stack).toMatch(/^\s+at /);
  });

  it('takes what is not an Error as its type only, a string as is', () => {
    expect(loggableError({ password: 'x' })).toBe('object');
    expect(loggableError('boom')).toBe('boom');
  });
});
