import { describe, expect, it } from 'vitest';
import type { Logger } from '../observability/logger.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { OutboxRelay } from './outbox-relay.js';
import type { OutboxStore } from './outbox-store.js';

describe('OutboxRelay metrics', () => {
  it("exports the backlog of the shards configured now: a removed shard's series goes, one that does not answer keeps its last value", async () => {
    const metrics = createPromMetrics();
    let shards = ['s1', 's2'];
    const backlog = new Map<string, number | Error>([
      ['s1', 3],
      ['s2', 7],
    ]);
    const store = {
      shardIds: () => shards,
      backlog: async (id: string) => {
        const v = backlog.get(id);
        if (v instanceof Error) throw v;
        return v ?? 0;
      },
    } as unknown as OutboxStore;
    new OutboxRelay({
      store,
      amqp: {} as AmqpConnection,
      logger: {} as Logger,
      metrics,
    });
    const series = async () =>
      (await metrics.registry.metrics()).split('\n').filter((l) => l.startsWith('shardgate_outbox_backlog{'));
    expect(await series()).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 3',
      'shardgate_outbox_backlog{shard="s2"} 7',
    ]);
    // s2 does not answer: its last value stays
    backlog.set('s2', new Error('ECONNREFUSED'));
    backlog.set('s1', 4);
    expect(await series()).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 4',
      'shardgate_outbox_backlog{shard="s2"} 7',
    ]);
    // s2 removed: its series goes (before: it stayed for good)
    shards = ['s1'];
    expect(await series()).toEqual(['shardgate_outbox_backlog{shard="s1"} 4']);
  });
});
