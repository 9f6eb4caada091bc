/**
 * StatementBatcher against a real MariaDB master of the local stack: statements issued together
 * leave in one COM_QUERY and each caller gets what its statement alone would have answered; a
 * failing statement fails its whole batch and stops the server there; statements of another
 * typeCast, or issued after an await, go in a query of their own, in order. `queryLast` goes
 * as the last statement of its turn's query, or after that turn's queries when they are several,
 * and never runs after a failure.
 */
import { sql } from 'drizzle-orm';
import { datetime, int, mysqlTable } from 'drizzle-orm/mysql-core';
import { drizzle } from 'drizzle-orm/mysql2';
import type { Connection, QueryOptions } from 'mysql2/promise';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { StatementBatcher } from '../src/db/statement-batcher.js';
import { topology } from '../stack/topology.js';
import { appConnection } from './helpers/shard-db.js';

const scratch = mysqlTable('batcher_scratch', {
  id: int('id').primaryKey(),
  at: datetime('at', { mode: 'date', fsp: 3 }),
});

let connection: Connection;
/** the SQL of every query the batcher handed to the connection */
let sent: string[] = [];
let batcher: StatementBatcher;

beforeAll(async () => {
  const master = topology.shards[0]!.master;
  connection = await appConnection(master.port);
  // a temporary table: this session's own, gone with it
  await connection.query('CREATE TEMPORARY TABLE batcher_scratch (id INT PRIMARY KEY, at DATETIME(3))');
  batcher = new StatementBatcher({
    query: (options: QueryOptions, values?: unknown) => {
      sent.push(options.sql);
      return connection.query(options, values as never) as Promise<[unknown, unknown]>;
    },
    format: (text: string, values?: unknown) => connection.format(text, values),
  });
});
afterAll(() => connection?.end());
beforeEach(async () => {
  await connection.query('DELETE FROM batcher_scratch');
  sent = [];
});

describe('StatementBatcher on MariaDB', () => {
  it('sends statements issued together in one query and answers each as if alone', async () => {
    const [inserted, asArrays, asObjects] = await Promise.all([
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id, at) VALUES (?, ?)' }, [
        1,
        '2026-01-02 03:04:05.678',
      ]),
      batcher.query({ sql: 'SELECT id, ? AS label FROM batcher_scratch', rowsAsArray: true }, ["it's ?"]),
      batcher.query({ sql: 'SELECT id AS n, id * 2 AS twice FROM batcher_scratch' }),
    ]);
    expect(sent).toHaveLength(1);
    expect((inserted[0] as { affectedRows: number }).affectedRows).toBe(1);
    expect(asArrays[0]).toEqual([[1, "it's ?"]]);
    expect(asObjects[0]).toEqual([{ n: 1, twice: 2 }]);
    expect((asObjects[1] as { name: string }[]).map((f) => f.name)).toEqual(['n', 'twice']);
    // the same statements alone answer the same
    const [alone] = await connection.query('SELECT id AS n, id * 2 AS twice FROM batcher_scratch');
    expect(asObjects[0]).toEqual(alone);
  });

  it('keeps drizzle’s answers: a transaction’s START and drizzle statements in one round trip', async () => {
    const db = drizzle({ client: batcher as never });
    const plain = drizzle({ client: connection as never });
    const at = new Date('2026-03-04T05:06:07.089Z');
    const [, , rows] = await Promise.all([
      batcher.query({ sql: 'START TRANSACTION' }),
      db.insert(scratch).values({ id: 7, at }),
      db.select().from(scratch).where(sql`${scratch.id} = ${7}`),
    ]);
    expect(sent).toHaveLength(1);
    expect(rows).toEqual([{ id: 7, at }]);
    await batcher.query({ sql: 'COMMIT' });
    expect(await plain.select().from(scratch)).toEqual(rows);
    expect(sent).toHaveLength(2);
  });

  it('fails every statement of a batch when one fails, and the server runs none after it', async () => {
    await connection.query('INSERT INTO batcher_scratch (id) VALUES (2)');
    const results = await Promise.allSettled([
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [1]),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [2]),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [3]),
    ]);
    expect(sent).toHaveLength(1);
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason.code).toBe('ER_DUP_ENTRY');
    }
    const [rows] = await connection.query('SELECT id FROM batcher_scratch ORDER BY id');
    // autocommit: the statement before the failure stands, the one after it never ran
    expect(rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('sends statements of another typeCast, or issued after an await, separately and in order', async () => {
    const cast: QueryOptions['typeCast'] = (field, next) =>
      field.type === 'LONG' ? `#${field.string()}` : next();
    const [a, b, c] = await Promise.all([
      batcher.query({ sql: 'SELECT 1 AS one', rowsAsArray: true }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (5)' }),
      batcher.query({ sql: 'SELECT id FROM batcher_scratch', rowsAsArray: true, typeCast: cast }),
    ]);
    expect(sent).toHaveLength(2);
    expect(a[0]).toEqual([[1]]);
    expect((b[0] as { affectedRows: number }).affectedRows).toBe(1);
    expect(c[0]).toEqual([['#5']]);
    await batcher.query({ sql: 'SELECT 2' });
    expect(sent).toHaveLength(3);
  });

  it('sends a queryLast as the last statement of its turn, after statements issued after it too', async () => {
    const [, a, commit, b] = await Promise.all([
      batcher.query({ sql: 'START TRANSACTION' }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [1]),
      batcher.queryLast({ sql: 'COMMIT' }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [2]),
    ]);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatch(/VALUES \(2\);\nCOMMIT$/);
    expect((a[0] as { affectedRows: number }).affectedRows).toBe(1);
    expect((b[0] as { affectedRows: number }).affectedRows).toBe(1);
    expect(commit[0]).toMatchObject({ affectedRows: 0 });
    const [rows] = await connection.query('SELECT @@in_transaction AS t');
    expect(rows).toEqual([{ t: 0 }]);
    await connection.query('ROLLBACK'); // nothing to undo: the COMMIT ran
    const [ids] = await connection.query('SELECT id FROM batcher_scratch ORDER BY id');
    expect(ids).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it('never runs a queryLast after a failing statement of its turn', async () => {
    await connection.query('INSERT INTO batcher_scratch (id) VALUES (2)');
    const results = await Promise.allSettled([
      batcher.query({ sql: 'START TRANSACTION' }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [1]),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [2]),
      batcher.queryLast({ sql: 'COMMIT' }),
    ]);
    expect(sent).toHaveLength(1);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected', 'rejected']);
    const [rows] = await connection.query('SELECT @@in_transaction AS t');
    expect(rows).toEqual([{ t: 1 }]);
    await connection.query('ROLLBACK');
    const [ids] = await connection.query('SELECT id FROM batcher_scratch ORDER BY id');
    expect(ids).toEqual([{ id: 2 }]);
  });

  it('sends a queryLast alone after its turn’s queries when they are several, and only if all succeeded', async () => {
    const cast: QueryOptions['typeCast'] = (_field, next) => next();
    // two typeCasts: two queries, then the COMMIT
    const ok = await Promise.all([
      batcher.query({ sql: 'START TRANSACTION' }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [1]),
      batcher.query({ sql: 'SELECT COUNT(*) FROM batcher_scratch', rowsAsArray: true }),
      batcher.query({ sql: 'SELECT id FROM batcher_scratch', rowsAsArray: true, typeCast: cast }),
      batcher.queryLast({ sql: 'COMMIT' }),
    ]);
    expect(sent).toHaveLength(3);
    expect(sent[2]).toBe('COMMIT');
    expect(ok[2][0]).toEqual([[1]]);
    expect(ok[3][0]).toEqual([[1]]);
    // the first query fails: the second still runs (it is a query of its own), the COMMIT is never sent
    sent = [];
    const failed = await Promise.allSettled([
      batcher.query({ sql: 'START TRANSACTION' }),
      batcher.query({ sql: 'INSERT INTO batcher_scratch (id) VALUES (?)' }, [1]),
      batcher.query({ sql: 'SELECT COUNT(*) FROM batcher_scratch', rowsAsArray: true }),
      batcher.query({ sql: 'SELECT id FROM batcher_scratch', rowsAsArray: true, typeCast: cast }),
      batcher.queryLast({ sql: 'COMMIT' }),
    ]);
    await new Promise((r) => setTimeout(r, 50));
    expect(sent).toHaveLength(2);
    expect(failed.map((r) => r.status)).toEqual([
      'rejected',
      'rejected',
      'rejected',
      'fulfilled',
      'rejected',
    ]);
    expect(failed[4]).toMatchObject({ status: 'rejected', reason: { code: 'ER_DUP_ENTRY' } });
    const [rows] = await connection.query('SELECT @@in_transaction AS t');
    expect(rows).toEqual([{ t: 1 }]);
    await connection.query('ROLLBACK');
  });

  it('refuses a queryLast that answers rows', () => {
    expect(() => batcher.queryLast({ sql: 'SELECT 1' })).toThrow(/without rows/);
  });
});
