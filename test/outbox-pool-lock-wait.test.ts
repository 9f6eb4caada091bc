/**
 * The email worker's pool (src/mail/outbox-pool.ts) against a real master of the local stack: a
 * statement that waits on a table's metadata lock (an `ALTER TABLE` queued behind an open
 * transaction) fails after the pool's 1 s lock wait with ER_LOCK_WAIT_TIMEOUT, as a row-lock wait
 * does, instead of waiting for the server's default `lock_wait_timeout` (a day) with its
 * connection held. On a table of this test's own, so no other test's statements wait.
 */
import { randomUUID } from 'node:crypto';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, describe, expect, it } from 'vitest';
import { createOutboxPool } from '../src/mail/outbox-pool.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { rootConnection, rootQuery } from './helpers/shard-db.js';
import { waitFor } from './helpers/wait-for.js';

const master = topology.shards[0]!.master;
const table = `mdl_probe_${randomUUID().slice(0, 8)}`;

afterAll(async () => {
  await rootQuery(master.port, `DROP TABLE IF EXISTS \`${table}\``);
});

describe('the outbox pool under a metadata lock', () => {
  it('a statement waiting on a queued ALTER TABLE fails with a lock wait timeout instead of hanging', async () => {
    await rootQuery(master.port, `CREATE TABLE \`${table}\` (id INT PRIMARY KEY)`);
    const holder = await rootConnection(master.port);
    const alterer = await rootConnection(master.port);
    const pool = createOutboxPool({
      host: topology.host,
      port: master.port,
      database: topology.database,
      user: topology.dbUser,
      password: dbPassword(),
      connectionLimit: 1,
    });
    let alter: Promise<unknown> | undefined;
    try {
      await pool.query('SELECT 1'); // the connection and its session settings, before the lock
      await holder.query('START TRANSACTION');
      await holder.query(`SELECT * FROM \`${table}\``);
      alter = alterer.query(`ALTER TABLE \`${table}\` ADD COLUMN c INT`);
      alter.catch(() => {});
      await waitFor(
        async () => {
          const [rows] = await holder.query<RowDataPacket[]>(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE STATE = 'Waiting for table metadata lock' AND INFO LIKE ?",
            [`ALTER TABLE \`${table}\`%`],
          );
          return rows.length > 0;
        },
        { timeoutMs: 5000, intervalMs: 50, what: 'the ALTER waiting for the metadata lock' },
      );
      const outcome = await Promise.race([
        pool.query(`SELECT * FROM \`${table}\``).then(
          () => 'answered',
          (error: { errno?: number }) => `errno ${error.errno}`,
        ),
        // generous: the pool's wait is 1 s; before, it waited for the lock (a day at most)
        new Promise((resolve) => setTimeout(() => resolve('still waiting after 8 s'), 8000)),
      ]);
      expect(outcome).toBe('errno 1205');
    } finally {
      await holder.query('COMMIT').catch(() => {});
      await alter;
      holder.destroy();
      alterer.destroy();
      await pool.end();
    }
  }, 20_000);
});
