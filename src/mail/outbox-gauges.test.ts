import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { registerOutboxGauges } from './outbox-gauges.js';
import type { OutboxBacklog } from './outbox-store.js';

const backlogOf = (unsent: number, oldestWaitSeconds = 0): OutboxBacklog => ({ unsent, oldestWaitSeconds });

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
    const backlog = new Map<string, OutboxBacklog | Error>([
      ['s1', backlogOf(3, 0.25)],
      ['s2', backlogOf(7, 42)],
    ]);
    let reads = 0;
    registerOutboxGauges({
      metrics,
      store: {
        shardIds: () => shards,
        backlog: async (id: string) => {
          reads++;
          const v = backlog.get(id);
          if (v instanceof Error) throw v;
          return v ?? backlogOf(0);
        },
      },
    });
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 3',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0.25',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 42',
    ]);
    // one read per shard serves both gauges of a scrape
    expect(reads).toBe(2);
    await new Promise((r) => setTimeout(r, 1100));
    // s2 does not answer: its last values stay
    backlog.set('s2', new Error('ECONNREFUSED'));
    backlog.set('s1', backlogOf(0));
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 0',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 42',
    ]);
    await new Promise((r) => setTimeout(r, 1100));
    // s2 removed: its series go (before: they stayed for good)
    shards = ['s1'];
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 0',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0',
    ]);
  });

  it("show a hanging master's last values after half a second, the others' fresh", async () => {
    const metrics = createPromMetrics();
    let hang = false;
    registerOutboxGauges({
      metrics,
      store: {
        shardIds: () => ['s1', 's2'],
        backlog: async (id: string) =>
          hang && id === 's1' ? new Promise<OutboxBacklog>(() => {}) : backlogOf(id === 's1' ? 3 : 7),
      },
    });
    expect(await series(metrics)).toHaveLength(4);
    await new Promise((r) => setTimeout(r, 1100));
    hang = true; // a COMMIT waiting for disk space holds the master's reads too
    const started = performance.now();
    expect(await series(metrics)).toEqual([
      'shardgate_outbox_backlog{shard="s1"} 3',
      'shardgate_outbox_backlog{shard="s2"} 7',
      'shardgate_outbox_oldest_unsent_seconds{shard="s1"} 0',
      'shardgate_outbox_oldest_unsent_seconds{shard="s2"} 0',
    ]);
    expect(performance.now() - started).toBeLessThan(1500); // before: as long as the master hung
  });
});
