import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { registerOutboxGauges } from './outbox-gauges.js';

async function series(metrics: ReturnType<typeof createPromMetrics>) {
  return (await metrics.registry.metrics())
    .split('\n')
    .filter((l) => l.startsWith('shardgate_outbox_backlog{') || l.startsWith('shardgate_outbox_oldest'))
    .sort();
}

describe('outbox gauges', () => {
  it("export the backlog and the oldest due row's wait of the shards configured now: a removed shard's series go, one that does not answer keeps its last values", async () => {
    const metrics = createPromMetrics();
    let shards = ['s1', 's2'];
    const backlog = new Map<string, [number, number] | Error>([
      ['s1', [3, 0.25]],
      ['s2', [7, 42]],
    ]);
    const of = (id: string) => {
      const v = backlog.get(id);
      if (v instanceof Error) throw v;
      return v ?? [0, 0];
    };
    registerOutboxGauges({
      metrics,
      store: {
        shardIds: () => shards,
        backlog: async (id) => of(id)[0],
        oldestDueWait: async (id) => of(id)[1],
      },
    });
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 3',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0.25',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 42',
    ]);
    // s2 does not answer: its last values stay
    backlog.set('s2', new Error('ECONNREFUSED'));
    backlog.set('s1', [0, 0]);
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 0',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 42',
    ]);
    // s2 removed: its series go (before: they stayed for good)
    shards = ['s1'];
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 0',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0',
    ]);
  });

  it("show a hanging master's last values after half a second, the others' fresh; a slow count does not hold the age", async () => {
    const metrics = createPromMetrics();
    let hang = false;
    const never = new Promise<number>(() => {});
    registerOutboxGauges({
      metrics,
      store: {
        shardIds: () => ['s1', 's2'],
        backlog: async (id) => (hang ? never : id === 's1' ? 3 : 7),
        oldestDueWait: async (id) => (id === 's2' ? (hang ? 5 : 2) : hang ? never : 1),
      },
    });
    expect(await series(metrics)).toHaveLength(4);
    // a COMMIT waiting for disk space holds s1's reads; s2's count runs long (a big backlog)
    hang = true;
    const started = performance.now();
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 3',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 1',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 5',
    ]);
    expect(performance.now() - started).toBeLessThan(1500); // before: as long as the master hung
  });
});
