/**
 * A server that refuses new connections for its limit on connections, against a real master of the
 * local stack: an account of this test's own with `MAX_USER_CONNECTIONS 2` (MariaDB answers a third
 * connection ER_USER_LIMIT_REACHED, 1226, as it answers `max_connections` with 1040), so no other
 * test's connections are refused.
 * - the API's pool holds at the connections it has and callers wait for one of them: every call
 *   answers, none fails as the node's unavailability (before, an outside check with
 *   `max_connections` reached had the master's breaker opened while live connections answered);
 * - with no connection of its own, the refusal is the node's unavailability;
 * - a write abandoned at its call timeout is stopped over one of the pool's connections when the
 *   server refuses the kill's own: not applied, and said so (before, "may have applied").
 */
import { randomUUID } from 'node:crypto';
import { type Connection, createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HOLD_AT_REFUSAL_MS, MysqlNodeSet } from '../src/db/mysql-node-set.js';
import type { MysqlSession } from '../src/db/mysql-session.js';
import { silentLogger } from '../src/observability/logger.js';
import { DependencyUnavailableError } from '../src/resilience/dependency-unavailable.js';
import { CallStoppedError } from '../src/resilience/errors.js';
import type { SqlNode } from '../src/routing/sql-node.js';
import { topology } from '../stack/topology.js';
import { rootConnection, rootQuery } from './helpers/shard-db.js';

const master = topology.shards[0]!.master;
const suffix = randomUUID().slice(0, 8);
const user = `sgcap_${suffix}`;
const password = randomUUID();
const probeId = `conn-limit-${suffix}`;
const HOSTS = ['127.0.0.1', 'localhost'];
const opened: MysqlNodeSet[] = [];

function nodeSet(): MysqlNodeSet {
  const nodes = new MysqlNodeSet({ user, password: () => password, logger: silentLogger });
  opened.push(nodes);
  return nodes;
}

function acquire(nodes: MysqlNodeSet): SqlNode<MysqlSession> {
  return nodes.acquire({ host: topology.host, port: master.port, database: topology.database });
}

const sleepRead = (seconds: number) => (session: MysqlSession) =>
  session.transaction(async (sql) => {
    await sql.client.query({ sql: `SELECT SLEEP(${seconds})` });
  });

beforeAll(async () => {
  for (const host of HOSTS) {
    await rootQuery(
      master.port,
      `CREATE USER '${user}'@'${host}' IDENTIFIED BY '${password}' WITH MAX_USER_CONNECTIONS 2`,
    );
    await rootQuery(master.port, `GRANT ALL PRIVILEGES ON \`${topology.database}\`.* TO '${user}'@'${host}'`);
    await rootQuery(master.port, `GRANT PROCESS ON *.* TO '${user}'@'${host}'`);
  }
  await rootQuery(master.port, 'INSERT INTO breaker_probes (probe_id, probed_at) VALUES (?, NOW(3))', [
    probeId,
  ]);
});

afterAll(async () => {
  await Promise.all(opened.map((n) => n.close()));
  for (const host of HOSTS) await rootQuery(master.port, `DROP USER IF EXISTS '${user}'@'${host}'`);
  await rootQuery(master.port, 'DELETE FROM breaker_probes WHERE probe_id = ?', [probeId]);
});

describe('a server refusing connections for its limit', () => {
  it('holds the pool at the connections it has: six calls on two connections all answer', async () => {
    const nodes = nodeSet();
    const node = acquire(nodes);
    const results = await Promise.allSettled(Array.from({ length: 6 }, () => node.run(sleepRead(0.3))));
    const failed = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
    expect(failed).toEqual([]);
    // the hold ends: the pool tries its size again (refused again, held again), and still answers
    await new Promise((r) => setTimeout(r, HOLD_AT_REFUSAL_MS + 200));
    const again = await Promise.allSettled(Array.from({ length: 4 }, () => node.run(sleepRead(0.1))));
    expect(again.filter((r) => r.status === 'rejected')).toEqual([]);
    await nodes.close();
  });

  it('a call held at a refusal waits for a busy pool as long as the caller allows (then busy, not counted)', async () => {
    const nodes = nodeSet();
    const node = acquire(nodes);
    const holding = [node.run(sleepRead(3)), node.run(sleepRead(3))];
    try {
      // both connections busy for 3 s; the third call is refused a connection and held
      await new Promise((r) => setTimeout(r, 300));
      const failed = await node.run(sleepRead(0), { acquireWithinMs: 500 }).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(DependencyUnavailableError);
      // before: the 2 s of a new connection's wait, past a breaker's call timeout
      expect(failed).toMatchObject({
        busy: true,
        reason: expect.stringMatching(
          /^no free connection within 500 ms \(every connection of the pool is busy/,
        ),
      });
    } finally {
      await Promise.allSettled(holding);
      await nodes.close();
    }
  });

  it('ends a hold whose connections were all lost: the waiting call gets a new one', async () => {
    // a review: nothing released during the hold, and the waiter timed out as busy while the
    // server accepted connections again
    const nodes = nodeSet();
    const node = acquire(nodes);
    const sleepers = [node.run(sleepRead(5)), node.run(sleepRead(5))].map((p) => p.catch((e: unknown) => e));
    try {
      await new Promise((r) => setTimeout(r, 300));
      const waiting = node.run(sleepRead(0)).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 200)); // refused, held
      const threads = await rootQuery<{ ID: number }>(
        master.port,
        "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ? AND INFO LIKE 'SELECT SLEEP(5)%'",
        [user],
      );
      expect(threads).toHaveLength(2);
      for (const { ID } of threads) await rootQuery(master.port, 'KILL CONNECTION ?', [ID]);
      expect(await waiting).not.toBeInstanceOf(Error);
    } finally {
      await Promise.all(sleepers);
      await nodes.close();
    }
  });

  it('with no connection of its own, the refusal is the node unavailability (not busy)', async () => {
    const held: Connection[] = [];
    try {
      for (let i = 0; i < 2; i++)
        held.push(
          await createConnection({
            host: topology.host,
            port: master.port,
            user,
            password,
            database: topology.database,
          }),
        );
      const node = acquire(nodeSet());
      const failed = await node.run(sleepRead(0)).catch((e: unknown) => e);
      expect(failed).toBeInstanceOf(DependencyUnavailableError);
      expect(failed).toMatchObject({ busy: false, outcomeUnknown: false });
      expect(String((failed as Error).message)).toMatch(/LIMIT_REACHED/);
    } finally {
      for (const c of held) c.destroy();
    }
  });

  it("stops an abandoned write over a pooled connection when the server refuses the kill's own", async () => {
    const nodes = nodeSet();
    const node = acquire(nodes);
    // two connections in the pool, one of them idle afterwards
    await Promise.all([node.run(sleepRead(0.05)), node.run(sleepRead(0.05))]);
    const locker = await rootConnection(master.port);
    try {
      await locker.query('START TRANSACTION');
      await locker.query('SELECT * FROM breaker_probes WHERE probe_id = ? FOR UPDATE', [probeId]);
      const controller = new AbortController();
      const write = node
        .run(
          (session) =>
            session.transaction(async (sql) => {
              await sql.client.query(
                { sql: "UPDATE breaker_probes SET probed_at = '2001-01-01 00:00:00' WHERE probe_id = ?" },
                [probeId],
              );
            }),
          { signal: controller.signal, cancellable: true },
        )
        .catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 500));
      controller.abort();
      const failed = await write;
      expect(failed).toBeInstanceOf(CallStoppedError);
      expect((failed as CallStoppedError).report).toMatchObject({
        mayHaveApplied: false,
        waitedFor: 'row-lock',
      });
      await locker.query('COMMIT');
      const rows = await rootQuery(
        master.port,
        'SELECT YEAR(probed_at) AS y FROM breaker_probes WHERE probe_id = ?',
        [probeId],
      );
      expect(rows).toHaveLength(1);
      expect(Number((rows as { y: unknown }[])[0]!.y)).not.toBe(2001);
      // the borrowed connection went back to the pool, which serves: none is left in use
      const both = await Promise.allSettled([node.run(sleepRead(0.2)), node.run(sleepRead(0.2))]);
      expect(both.filter((r) => r.status === 'rejected')).toEqual([]);
      expect(nodes.stats()[0]).toMatchObject({ inUse: 0 });
    } finally {
      locker.destroy();
      await nodes.close();
    }
  });
});
