import { expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import type { ReplicaStatus, ShardStatus } from '../routing/shard-router.js';
import { registerDataMetrics } from './data-metrics.js';

const replica = (name: string): ReplicaStatus =>
  ({ name, state: 'admitted', lagSeconds: 0 }) as unknown as ReplicaStatus;

// a review: the API's outbox_backlog kept a removed shard's series (the worker's of the same
// name dropped it), and so did every per-pool and per-replica gauge here
it("drops a removed shard's, replica's and pool's series at the next scrape", async () => {
  const metrics = createPromMetrics();
  let shards: ShardStatus[] = [
    { id: 's1', replicas: [replica('s1-r0')] } as ShardStatus,
    { id: 's2', replicas: [replica('s2-r0')] } as ShardStatus,
  ];
  let pools = ['s1-m', 's2-m', 's2-r0'];
  const router = {
    status: () => shards,
    master: () => ({ run: async () => [{ n: 4 }] }),
  };
  const nodes = { stats: () => pools.map((node) => ({ node, inUse: 1, idle: 2, queued: 0 })) };
  registerDataMetrics({ metrics, nodes: nodes as never, router: router as never });
  const before = (await metrics.render()).body;
  expect(before).toMatch(/^shardgate_outbox_backlog\{shard="s2"\} 4$/m);
  expect(before).toMatch(/^shardgate_replica_routable\{shard="s2",replica="s2-r0"\} 1$/m);
  expect(before).toMatch(/^shardgate_replica_lag_seconds\{shard="s2",replica="s2-r0"\} 0$/m);
  expect(before).toMatch(/^shardgate_db_pool_queued\{node="s2-r0"\} 0$/m);
  shards = shards.slice(0, 1);
  pools = ['s1-m'];
  const after = (await metrics.render()).body;
  expect(after).not.toMatch(/s2/);
  expect(after).toMatch(/^shardgate_outbox_backlog\{shard="s1"\} 4$/m);
  expect(after).toMatch(/^shardgate_replica_routable\{shard="s1",replica="s1-r0"\} 1$/m);
  expect(after).toMatch(/^shardgate_db_pool_connections\{node="s1-m",state="idle"\} 2$/m);
});

it("keeps a shard's last backlog while its master does not answer", async () => {
  const metrics = createPromMetrics();
  let answer: () => Promise<{ n: number }[]> = async () => [{ n: 7 }];
  const router = {
    status: () => [{ id: 's1', replicas: [] }],
    master: () => ({ run: () => answer() }),
  };
  registerDataMetrics({ metrics, nodes: { stats: () => [] } as never, router: router as never });
  expect((await metrics.render()).body).toMatch(/^shardgate_outbox_backlog\{shard="s1"\} 7$/m);
  answer = async () => {
    throw new Error('mysql-master:s1 is unavailable');
  };
  expect((await metrics.render()).body).toMatch(/^shardgate_outbox_backlog\{shard="s1"\} 7$/m);
});
