import { describe, expect, it } from 'vitest';
import { MysqlSession } from './mysql-session.js';
import type { SqlContext } from './repos/sql-context.js';

/** a connection that answers every statement but COMMIT, whose connection is lost */
function lostAtCommit() {
  const sent: string[] = [];
  const lost = Object.assign(new Error('Connection lost: The server closed the connection.'), {
    code: 'PROTOCOL_CONNECTION_LOST',
    fatal: true,
  });
  const answer = async (options: { sql: string }) => {
    sent.push(options.sql);
    if (options.sql === 'COMMIT') throw lost;
    return [{}, undefined] as [unknown, unknown];
  };
  const sql = { client: { query: answer, queryLast: answer } } as unknown as SqlContext;
  return { sent, session: new MysqlSession('mariadb', sql) };
}

describe('MysqlSession.commitSent', () => {
  it('is false until a COMMIT is sent, true after, whether it answered or not', async () => {
    const { sent, session } = lostAtCommit();
    await expect(
      session.transaction(async () => {
        expect(session.commitSent).toBe(false);
        return 1;
      }),
    ).rejects.toThrow('Connection lost');
    expect(sent).toEqual(['START TRANSACTION', 'COMMIT']);
    expect(session.commitSent).toBe(true);
  });

  it('is true once commitWith sent its COMMIT', async () => {
    const { session } = lostAtCommit();
    await expect(session.transaction(async (_sql, tx) => tx.commitWith(async () => 1))).rejects.toThrow(
      'Connection lost',
    );
    expect(session.commitSent).toBe(true);
  });

  it('stays false for a transaction rolled back before its COMMIT', async () => {
    const { sent, session } = lostAtCommit();
    await expect(
      session.transaction(async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(sent).toEqual(['START TRANSACTION', 'ROLLBACK']);
    expect(session.commitSent).toBe(false);
  });
});
