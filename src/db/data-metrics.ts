/**
 * Metrics of the data tier, collected at scrape time (no background work):
 * - `db_pool_connections{node,state}` (in_use | idle) and `db_pool_queued{node}` per host pool;
 * - `replica_lag_seconds{shard,replica}` as the router measures it (GTID-based), and
 *   `replica_routable{shard,replica}` (1 when reads may go there), `replica_excluded{shard,replica,
 *   cause}` (1 for the cause a replica is not read from now, routing/replica-health.ts
 *   ReplicaCause; no series while it is admitted);
 * - `outbox_backlog{shard}`: unsent outbox rows per shard master, counted through the master's
 *   breaker, half a second at most (a dead or hanging master leaves the last value and does not
 *   fail or hold the scrape); the email worker exports it too, with the oldest row's wait.
 * A pool, replica or shard no longer there loses its series at the next scrape (a review: a
 * removed shard's stayed in every scrape).
 */
import { count, isNull } from 'drizzle-orm';
import { lastValuePerShard } from '../observability/last-value-per-shard.js';
import type { Metrics } from '../observability/metrics.js';
import type { ShardRouter } from '../routing/shard-router.js';
import type { MysqlNodeSet } from './mysql-node-set.js';
import type { MysqlSession } from './mysql-session.js';
import { outbox } from './schema.js';

/** how long a scrape waits for a shard's backlog count */
const BACKLOG_SCRAPE_MS = 500;

export function registerDataMetrics({
  metrics,
  nodes,
  router,
}: {
  metrics: Metrics;
  nodes: MysqlNodeSet;
  router: ShardRouter<MysqlSession>;
}): void {
  metrics.gauge({
    name: 'db_pool_connections',
    help: 'connections of each host pool by state',
    labelNames: ['node', 'state'],
    collect: (g) => {
      g.reset();
      for (const p of nodes.stats()) {
        g.set({ node: p.node, state: 'in_use' }, p.inUse);
        g.set({ node: p.node, state: 'idle' }, p.idle);
      }
    },
  });
  metrics.gauge({
    name: 'db_pool_queued',
    help: 'callers waiting for a connection of each host pool',
    labelNames: ['node'],
    collect: (g) => {
      g.reset();
      for (const p of nodes.stats()) g.set({ node: p.node }, p.queued);
    },
  });
  metrics.gauge({
    name: 'replica_lag_seconds',
    help: 'replication lag of each replica as measured by the router (-1 unknown)',
    labelNames: ['shard', 'replica'],
    collect: (g) => {
      g.reset();
      for (const s of router.status()) {
        for (const r of s.replicas) g.set({ shard: s.id, replica: r.name }, r.lagSeconds ?? -1);
      }
    },
  });
  metrics.gauge({
    name: 'replica_routable',
    help: '1 while reads may be routed to the replica',
    labelNames: ['shard', 'replica'],
    collect: (g) => {
      g.reset();
      for (const s of router.status()) {
        for (const r of s.replicas) g.set({ shard: s.id, replica: r.name }, r.state === 'admitted' ? 1 : 0);
      }
    },
  });
  metrics.gauge({
    name: 'replica_excluded',
    help: '1 for the cause each replica not read from now is out (lag, readmitting, lag_unknown, slow, unreachable, read_timeout, replication_stopped, ahead_of_master, not_probed)',
    labelNames: ['shard', 'replica', 'cause'],
    collect: (g) => {
      g.reset();
      for (const s of router.status()) {
        for (const r of s.replicas) if (r.cause) g.set({ shard: s.id, replica: r.name, cause: r.cause }, 1);
      }
    },
  });
  metrics.gauge({
    name: 'outbox_backlog',
    help: 'unsent outbox rows per shard master',
    labelNames: ['shard'],
    // as the worker's (mail/outbox-gauges.ts): half a second at most per shard (a master that
    // hangs kept a scrape as long as its breaker's call timeout), a removed shard's series dropped
    collect: lastValuePerShard(
      () => router.status().map((s) => s.id),
      async (id) => {
        const [row] = await router
          .master(id)
          .run((session) => session.sql.db.select({ n: count() }).from(outbox).where(isNull(outbox.sentAt)));
        return Number(row?.n ?? 0);
      },
      BACKLOG_SCRAPE_MS,
    ),
  });
}
