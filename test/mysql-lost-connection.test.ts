/**
 * The API's MariaDB pools (MysqlNodeSet) when a connection is lost without the pool being told in
 * time, against a real master of the local stack through a TCP relay this test controls:
 * - a pooled connection that died while idle (killed on the server, closed by `wait_timeout`,
 *   dropped by a firewall) before the pool read of it: the next call's first statement fails on
 *   it. The call runs again on another connection: no failure reaches the caller, the breaker
 *   sees none. Before, an outside check's one round of `KILL` over 23 idle connections made the
 *   next writes fail and opened the shard's master breaker (about 93 writes answered 503);
 * - a connection lost after a write's COMMIT was sent: the write may have been applied, and the
 *   error says so (`outcomeUnknown`: 503 `write_outcome_unknown`), never "not applied". Before, 3
 *   of 97 writes whose connections were killed in `Commit` were applied, answered
 *   `dependency_unavailable`.
 * The relay stands for the race a loaded instance loses (its event loop reads a killed
 * connection's close only after it sent the next statement on it): the relay keeps the client
 * side open and resets it when the client next writes.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server, Socket } from 'node:net';
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

interface Pair {
  client: Socket;
  server: Socket;
  /** cut: the server side closed, the client side reset when it next sends */
  cut: boolean;
  /** reset the client side right after forwarding its next COMMIT, its answer never relayed */
  cutAfterCommit: boolean;
}

/** A TCP relay to the master whose connections the test can cut without telling the client. */
function relay(): Promise<{ port: number; pairs: Set<Pair>; server: Server }> {
  const pairs = new Set<Pair>();
  const server = createServer((client) => {
    const upstream = new Socket();
    const pair: Pair = { client, server: upstream, cut: false, cutAfterCommit: false };
    pairs.add(pair);
    upstream.connect(master.port, topology.host);
    client.on('data', (chunk) => {
      if (pair.cut) {
        client.resetAndDestroy();
        return;
      }
      upstream.write(chunk);
      if (pair.cutAfterCommit && chunk.includes('COMMIT')) {
        pair.cut = true;
        // the COMMIT reached the server; its answer never reaches the client
        upstream.once('data', () => {
          upstream.destroy();
          client.resetAndDestroy();
        });
      }
    });
    upstream.on('data', (chunk) => {
      if (!pair.cut) client.write(chunk);
    });
    const close = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', () => {
      if (!pair.cut) close();
    });
  });
  return new Promise((resolve) =>
    server.listen(0, topology.host, () => {
      const address = server.address();
      resolve({ port: typeof address === 'object' && address ? address.port : 0, pairs, server });
    }),
  );
}

let proxy: Awaited<ReturnType<typeof relay>>;
let nodes: MysqlNodeSet;
let node: SqlNode<MysqlSession>;
const probeIds: string[] = [];

/** a write of one `breaker_probes` row in a transaction, as a caller's write is */
function write(probeId: string) {
  probeIds.push(probeId);
  return node.run(
    (session) =>
      session.transaction(async (sql) => {
        await sql.client.query(
          { sql: 'INSERT INTO breaker_probes (probe_id, probed_at) VALUES (?, NOW(3))' },
          [probeId],
        );
      }),
    { cancellable: true },
  );
}

async function rows(ids: string[]): Promise<string[]> {
  const found = await rootQuery<{ probe_id: string }>(
    master.port,
    'SELECT probe_id FROM breaker_probes WHERE probe_id IN (?)',
    [ids],
  );
  return found.map((r) => r.probe_id).sort();
}

beforeAll(async () => {
  proxy = await relay();
  nodes = new MysqlNodeSet({
    user: topology.dbUser,
    password: dbPassword,
    logger: silentLogger,
    connectionLimit: 4,
  });
  node = nodes.acquire({ host: topology.host, port: proxy.port, database: topology.database });
});

afterAll(async () => {
  await nodes?.close();
  proxy?.server.close();
  if (probeIds.length > 0)
    await rootQuery(master.port, 'DELETE FROM breaker_probes WHERE probe_id IN (?)', [probeIds]);
});

describe('MariaDB pool connections lost unseen', () => {
  it('a call whose pooled connection died while idle runs again on another connection: every write applied once, none failed', async () => {
    const run = randomUUID().slice(0, 8);
    // four connections in the pool
    await Promise.all(Array.from({ length: 4 }, (_, i) => write(`lost-warm-${run}-${i}`)));
    expect(proxy.pairs.size).toBe(4);
    for (const pair of proxy.pairs) {
      pair.cut = true;
      pair.server.destroy();
    }
    const ids = Array.from({ length: 6 }, (_, i) => `lost-idle-${run}-${i}`);
    const outcomes = await Promise.allSettled(ids.map(write));
    expect(
      outcomes.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason)),
    ).toEqual([]);
    expect(await rows(ids)).toEqual([...ids].sort());
  });

  it('a write whose connection is lost after its COMMIT was sent is of unknown outcome, not "not applied"', async () => {
    const run = randomUUID().slice(0, 8);
    await write(`lost-commit-warm-${run}`);
    for (const pair of proxy.pairs) pair.cutAfterCommit = true;
    const id = `lost-commit-${run}`;
    const error = await write(id).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(DependencyUnavailableError);
    expect((error as DependencyUnavailableError).outcomeUnknown).toBe(true);
    // and rightly so: this one was applied
    expect(await rows([id])).toEqual([id]);
  });
});
