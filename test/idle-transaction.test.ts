/**
 * A transaction of the API's pools that goes idle (its instance frozen mid-write: SIGSTOP, a VM
 * paused) is ended by MariaDB after `idle_transaction_timeout` (db/mysql-node-set.ts
 * sessionInitSql), so its row locks — a book's, a tenant's registration counter — go with it
 * instead of holding every other instance's writes of those rows until it resumes. Its COMMIT,
 * when it comes, fails: nothing of it was applied. Against shard-1's real master, with the
 * timeout shortened to 1 s.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { MysqlNodeSet } from '../src/db/mysql-node-set.js';
import { silentLogger } from '../src/observability/logger.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { waitFor } from './helpers/wait-for.js';

const master = node(topology.shards[0]!.id, 'master').port;
const nodes = new MysqlNodeSet({
  user: topology.dbUser,
  password: dbPassword,
  logger: silentLogger,
  connectionLimit: 2,
  idleTransactionTimeoutSeconds: 1,
});
const tenant = `t-idle-${randomBytes(4).toString('hex')}`;
afterAll(async () => {
  await nodes.close();
  await rootQuery(master, 'DELETE FROM tenant_state WHERE tenant_id = ?', [tenant]);
});

describe('a transaction left idle with a row locked', () => {
  it('is ended by the server: another session gets the lock, and its COMMIT applies nothing', async () => {
    await rootQuery(
      master,
      'INSERT INTO tenant_state (tenant_id, members_registered, created_at) VALUES (?, 0, NOW(3))',
      [tenant],
    );
    const events: string[] = [];
    const db = nodes.acquire({ host: topology.host, port: master, database: topology.database });
    const frozen = db
      .run((session) =>
        session.transaction(async (sql) => {
          await sql.client.query({
            sql: 'UPDATE tenant_state SET members_registered = members_registered + 1 WHERE tenant_id = ?',
            values: [tenant],
          });
          events.push('locked');
          // the instance "frozen" for 4 s, its transaction open
          await new Promise((r) => setTimeout(r, 4000));
          events.push('resumed');
          return 'done';
        }),
      )
      .then(
        () => 'committed',
        (error: unknown) => `failed: ${(error as Error).message}`,
      );
    // the row is locked before the other writer starts, however long the UPDATE took
    await waitFor(() => events.includes('locked'), {
      timeoutMs: 3000,
      intervalMs: 10,
      what: 'the row locked',
    });
    expect(events).toEqual(['locked']);
    // another writer of the same row, with a lock wait longer than the freeze
    const other = await rootConnection(master);
    try {
      await other.query('SET SESSION innodb_lock_wait_timeout = 30');
      await other.query('START TRANSACTION');
      await other.query('SELECT members_registered FROM tenant_state WHERE tenant_id = ? FOR UPDATE', [
        tenant,
      ]);
      // before: it waited for the frozen transaction to resume and commit
      events.push('other got the lock');
      await other.query('ROLLBACK');
    } finally {
      other.destroy();
    }
    const outcome = await frozen;
    expect(events).toEqual(['locked', 'other got the lock', 'resumed']);
    expect(outcome).toMatch(/^failed: /);
    const [row] = await rootQuery<{ n: number }>(
      master,
      'SELECT members_registered AS n FROM tenant_state WHERE tenant_id = ?',
      [tenant],
    );
    expect(Number(row?.n)).toBe(0);
  });
});
