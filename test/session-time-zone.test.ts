/**
 * Every shardgate connection pins its session's time zone to UTC with its sql_mode
 * (src/db/session-sql-mode.ts): times are DATETIME(3) written as UTC text, and the worker
 * compares them with NOW(3). A server whose zone is not UTC is played by a session set to
 * -05:00 first (the server's default would come from `time_zone`/SYSTEM); the stack's servers
 * and their global settings are left alone.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { SET_SESSION_SQL_MODE } from '../src/db/session-sql-mode.js';
import { appConnection, node } from './helpers/shard-db.js';

const connection = await appConnection(node('shard-1', 'master').port);
afterAll(() => connection.end());

describe('the session time zone', () => {
  it('NOW(3) is UTC after the session statement, whatever zone the session had', async () => {
    await connection.query("SET SESSION time_zone = '-05:00'");
    const [[west]] = (await connection.query(
      'SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(3), NOW(3)) AS diff',
    )) as unknown as [[{ diff: number }]];
    expect(west.diff).toBe(-5 * 3600); // the case: 5 h off UTC
    await connection.query(SET_SESSION_SQL_MODE);
    const [[pinned]] = (await connection.query(
      'SELECT TIMESTAMPDIFF(SECOND, UTC_TIMESTAMP(3), NOW(3)) AS diff, @@session.time_zone AS zone',
    )) as unknown as [[{ diff: number; zone: string }]];
    expect(pinned).toEqual({ diff: 0, zone: '+00:00' });
  });
});
