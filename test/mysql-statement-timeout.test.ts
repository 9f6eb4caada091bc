/**
 * A statement the server ends at its own time limit (MariaDB `max_statement_time`: ER_STATEMENT_TIMEOUT,
 * 1969), against a real master of the local stack: the API's pools (MysqlNodeSet) answer it as a
 * retryable unavailability, not applied (503 `dependency_unavailable`, the breaker counting it as a
 * failure), never as an unexpected error. Before, an outside check that set
 * `max_statement_time` to 2 ms got 7 of ~1,250 requests answered 500 `internal_error`. The limit is
 * set per statement here (`SET STATEMENT … FOR`), so no other test's connections see it.
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
import { rootQuery } from './helpers/shard-db.js';

const master = topology.shards[1]!.master;
let nodes: MysqlNodeSet;
let node: SqlNode<MysqlSession>;
const probeId = `stmt-timeout-${randomUUID().slice(0, 8)}`;

beforeAll(() => {
  nodes = new MysqlNodeSet({ user: topology.dbUser, password: dbPassword, logger: silentLogger });
  node = nodes.acquire({ host: topology.host, port: master.port, database: topology.database });
});

afterAll(async () => {
  await nodes?.close();
  await rootQuery(master.port, 'DELETE FROM breaker_probes WHERE probe_id = ?', [probeId]);
});

describe('a statement ended at the server time limit', () => {
  it('a read: a DependencyUnavailableError, not a bug', async () => {
    const failed = await node
      .run((session) =>
        session.transaction(async (sql) => {
          await sql.client.query({ sql: 'SET STATEMENT max_statement_time=0.01 FOR SELECT SLEEP(2)' });
        }),
      )
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DependencyUnavailableError);
    // a replica that ends a read so stays admitted for the others (shard-router.ts)
    expect(failed).toMatchObject({ answered: false, outcomeUnknown: false, endedAtTimeLimit: true });
    expect(String((failed as Error).message)).toMatch(/1969.*time limit/);
  });

  it('a write ended before its COMMIT: not applied, and said so', async () => {
    const failed = await node
      .run(
        (session) =>
          session.transaction(async (sql) => {
            await sql.client.query(
              { sql: 'INSERT INTO breaker_probes (probe_id, probed_at) VALUES (?, NOW(3))' },
              [probeId],
            );
            await sql.client.query({ sql: 'SET STATEMENT max_statement_time=0.01 FOR SELECT SLEEP(2)' });
          }),
        { cancellable: true },
      )
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(DependencyUnavailableError);
    expect(failed).toMatchObject({ answered: false, outcomeUnknown: false });
    const rows = await rootQuery(master.port, 'SELECT probe_id FROM breaker_probes WHERE probe_id = ?', [
      probeId,
    ]);
    expect(rows).toEqual([]);
  });
});
