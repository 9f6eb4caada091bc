/**
 * A burst of calls beyond an API instance's own pool (connections + queue) on one master: the
 * overflow is refused at once as `busy` (503 `dependency_busy`), which says nothing of the
 * master, so its breaker stays closed. Before, mysql2's "Queue limit reached." was classified as
 * the master failing: five of them opened the breaker of a healthy master, and every write of
 * the shard on that instance answered 503 for `reset_timeout_ms` (an outside review; many
 * borrows of one popular book, each holding a connection up to the call timeout, do it).
 * Against shard-1's real master, through the breaker guard the API uses.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { MysqlNodeSet } from '../src/db/mysql-node-set.js';
import { silentLogger } from '../src/observability/logger.js';
import { createNoopMetrics } from '../src/observability/metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { DependencyUnavailableError } from '../src/resilience/dependency-unavailable.js';
import { breakerNodeGuard } from '../src/routing/breaker-node-guard.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';

const master = topology.shards[0]!.master;
// scaled down from the defaults (10 connections, a queue of 100)
const nodes = new MysqlNodeSet({
  user: topology.dbUser,
  password: dbPassword,
  logger: silentLogger,
  connectionLimit: 2,
  queueLimit: 3,
});
afterAll(() => nodes.close());

describe('more calls at once than the pool and its queue hold', () => {
  it('the overflow is refused as busy, and the master breaker stays closed', async () => {
    const breakers = new BreakerRegistry({
      config: new MemoryConfigStore(),
      logger: silentLogger,
      metrics: createNoopMetrics(),
    });
    const guard = breakerNodeGuard(breakers, { probeId: 'pool-queue-full-test' });
    const node = guard.wrap(
      nodes.acquire({ host: topology.host, port: master.port, database: topology.database }),
      { name: 'mysql-master:shard-1', kind: 'mysql-master', shardId: 'shard-1' },
    );
    const outcomes = await Promise.allSettled(
      Array.from({ length: 12 }, () =>
        node.run(async (session) => {
          await session.position('master');
          await new Promise((r) => setTimeout(r, 150));
          return 'ok';
        }),
      ),
    );
    const refused = outcomes.flatMap((o) => (o.status === 'rejected' ? [o.reason as unknown] : []));
    // 2 run, 3 wait for them; the other 7 find the queue full
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(5);
    expect(refused).toHaveLength(7);
    for (const error of refused) {
      expect(error).toBeInstanceOf(DependencyUnavailableError);
      expect((error as DependencyUnavailableError).busy).toBe(true);
    }
    const breaker = breakers.get('mysql-master:shard-1', 'mysql-master');
    expect(breaker.state).toBe('closed');
    expect(breaker.view().failures).toBe(0);
  });
});
