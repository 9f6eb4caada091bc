/**
 * A master that cannot store a row (ER_RECORD_FILE_FULL 1114, "The table '…' is full": what an
 * outside check got on `members` and `idempotency_keys` from a MariaDB whose disk was full),
 * against a real master of the local stack through the API's pools (MysqlNodeSet): a retryable
 * unavailability of the node naming its disk (`serverShortage`, counted against its breaker on
 * writes), rolled back and said so, never an unexpected error (500 `internal_error` before).
 *
 * No disk of the stack is filled: the server's own "table is full" comes from a MEMORY table of
 * this test's, created at the smallest `max_heap_table_size` (16 KiB) and filled to it, in the
 * shard's database (the API's user may write nowhere else) and dropped after. Replicated as
 * everything else: its replicas hold it at their own size limit, and the failed statements
 * are rolled back, so none reaches them. The binlog errors of a full disk (EE_WRITE 3,
 * ER_ERROR_ON_WRITE 1026) take a full disk to produce; their shapes are covered by
 * src/db/mysql-errors.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MysqlNodeSet } from '../src/db/mysql-node-set.js';
import type { MysqlSession } from '../src/db/mysql-session.js';
import { silentLogger } from '../src/observability/logger.js';
import { DependencyUnavailableError } from '../src/resilience/dependency-unavailable.js';
import type { SqlNode } from '../src/routing/sql-node.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { rootConnection, rootQuery } from './helpers/shard-db.js';

const master = topology.shards[1]!.master;
const suffix = randomUUID().slice(0, 8);
const table = `scratch_full_${suffix}`;
const probeId = `table-full-${suffix}`;
let nodes: MysqlNodeSet;
let node: SqlNode<MysqlSession>;

beforeAll(async () => {
  const root = await rootConnection(master.port);
  try {
    // the table's size limit is the session's max_heap_table_size when it is created
    await root.query('SET SESSION max_heap_table_size = 16384');
    await root.query(
      `CREATE TABLE ${table} (id INT PRIMARY KEY, pad CHAR(200) NOT NULL DEFAULT '') ENGINE=MEMORY`,
    );
    // filled a row at a time (a statement that fails half-way would still replicate its rows)
    let full = false;
    for (let id = 1; id <= 1000 && !full; id++) {
      full = await root.query(`INSERT INTO ${table} (id) VALUES (?)`, [id]).then(
        () => false,
        (error: { errno?: number }) => {
          if (error.errno !== 1114) throw error;
          return true;
        },
      );
    }
    expect(full, 'the scratch table filled up').toBe(true);
  } finally {
    await root.end();
  }
  nodes = new MysqlNodeSet({ user: topology.dbUser, password: dbPassword, logger: silentLogger });
  node = nodes.acquire({ host: topology.host, port: master.port, database: topology.database });
});

afterAll(async () => {
  await nodes?.close();
  await rootQuery(master.port, `DROP TABLE IF EXISTS ${table}`);
  await rootQuery(master.port, 'DELETE FROM breaker_probes WHERE probe_id = ?', [probeId]);
});

const insertProbe = { sql: 'INSERT INTO breaker_probes (probe_id, probed_at) VALUES (?, NOW(3))' };
const insertRow = { sql: `INSERT INTO ${table} (id) VALUES (1000001)` };

async function probeRows(): Promise<unknown[]> {
  return rootQuery(master.port, 'SELECT probe_id FROM breaker_probes WHERE probe_id = ?', [probeId]);
}

describe('a master that cannot store a row (the table is full)', () => {
  it("a statement of the write: the node's shortage of disk, counted on writes, rolled back and said so", async () => {
    const failed = await node
      .run(
        (session) =>
          session.transaction(async (sql) => {
            await sql.client.query(insertProbe, [probeId]);
            await sql.client.query(insertRow);
          }),
        { cancellable: true },
      )
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DependencyUnavailableError);
    expect(failed).toMatchObject({
      serverShortage: 'disk_space',
      writesOnly: true,
      outcomeUnknown: false,
      answered: false,
    });
    expect((failed as Error).message).toContain(`ER_RECORD_FILE_FULL (1114): The table '${table}' is full`);
    expect(await probeRows()).toEqual([]);
    // the node answers on: its connection went back to the pool, rolled back
    expect(await node.run((session) => session.position('master'))).toMatch(/^\d+-\d+-\d+/);
  });

  it("in the COMMIT's round trip (commitWith): it stopped the batch before the COMMIT, so not applied either", async () => {
    const failed = await node
      .run(
        (session) =>
          session.transaction(async (sql, tx) => {
            await sql.client.query(insertProbe, [probeId]);
            await tx.commitWith(() => sql.client.query(insertRow));
          }),
        { cancellable: true },
      )
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DependencyUnavailableError);
    expect(failed).toMatchObject({ serverShortage: 'disk_space', outcomeUnknown: false });
    expect(await probeRows()).toEqual([]);
  });
});
