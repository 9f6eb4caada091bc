import { describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { DependencyError } from '../resilience/errors.js';
import { OutboxRetention, RETENTION_KEY } from './outbox-retention.js';

/** outbox rows per shard, by hours since delivery (null = never delivered) */
class FakeStore {
  rows = new Map<string, (number | null)[]>();
  calls: { shardId: string; hours: number; limit: number }[] = [];
  failing = new Set<string>();
  /** runs inside every purgeDelivered call, before it deletes */
  during: () => Promise<void> = async () => {};

  shardIds(): string[] {
    return [...this.rows.keys()];
  }

  async purgeDelivered(shardId: string, hours: number, limit: number): Promise<number> {
    this.calls.push({ shardId, hours, limit });
    await this.during();
    if (this.failing.has(shardId)) throw new DependencyError(`mysql-master:${shardId}`, 'down');
    const rows = this.rows.get(shardId)!;
    let n = 0;
    this.rows.set(
      shardId,
      rows.filter((age) => {
        if (n < limit && age !== null && age > hours) {
          n++;
          return false;
        }
        return true;
      }),
    );
    return n;
  }
}

function rig({ hours = '168' } = {}) {
  const store = new FakeStore();
  const config = new MemoryConfigStore({ initial: { [RETENTION_KEY]: hours } });
  const retention = new OutboxRetention({
    store,
    config,
    logger: silentLogger,
    metrics: createNoopMetrics(),
    intervalMs: 3_600_000,
    batchSize: 10,
    pauseMs: 0,
  });
  return { store, config, retention };
}

const ages = (old: number, young: number, undelivered: number) => [
  ...Array<number>(old).fill(200),
  ...Array<number>(young).fill(2),
  ...Array<null>(undelivered).fill(null),
];

describe('OutboxRetention', () => {
  it('deletes delivered rows older than the retention in batches until a batch comes back short', async () => {
    const { store, retention } = rig();
    store.rows.set('s1', ages(25, 4, 3));
    store.rows.set('s2', ages(10, 1, 0));
    await retention.run();
    expect(store.rows.get('s1')).toEqual(ages(0, 4, 3));
    expect(store.rows.get('s2')).toEqual(ages(0, 1, 0));
    // 10 + 10 + 5 on s1; 10, then an empty batch on s2
    expect(store.calls.map((c) => `${c.shardId}:${c.hours}:${c.limit}`)).toEqual([
      's1:168:10',
      's1:168:10',
      's1:168:10',
      's2:168:10',
      's2:168:10',
    ]);
  });

  it('with retention 0 it deletes nothing and asks no shard', async () => {
    const { store, retention } = rig({ hours: '0' });
    store.rows.set('s1', ages(5, 0, 0));
    await retention.run();
    expect(store.calls).toEqual([]);
    expect(store.rows.get('s1')).toHaveLength(5);
  });

  it('a change of the key starts a round at once, with the new retention', async () => {
    const { store, config, retention } = rig({ hours: '0' });
    store.rows.set('s1', [...ages(0, 0, 1), 5, 1]);
    retention.start();
    await retention.run();
    expect(store.calls).toEqual([]);
    config.put(RETENTION_KEY, '3');
    // no run() here: the change itself starts the round
    await vi.waitFor(() => expect(store.rows.get('s1')).toEqual([null, 1]), { timeout: 1000 });
    expect(store.calls.map((c) => c.hours)).toEqual([3]);
    // an invalid value is rejected by the config store: no round, and the last good one stays
    config.put(RETENTION_KEY, '-4');
    await new Promise((r) => setTimeout(r, 20));
    expect(store.calls).toHaveLength(1);
    await retention.run();
    expect(store.calls.map((c) => c.hours)).toEqual([3, 3]);
    await retention.stop();
  });

  it('a shard that fails is skipped until the next round; the others are purged', async () => {
    const { store, retention } = rig();
    store.rows.set('s1', ages(3, 0, 0));
    store.rows.set('s2', ages(3, 0, 0));
    store.failing.add('s1');
    await retention.run();
    expect(store.rows.get('s1')).toHaveLength(3);
    expect(store.rows.get('s2')).toHaveLength(0);
    store.failing.clear();
    await retention.run();
    expect(store.rows.get('s1')).toHaveLength(0);
  });

  it('a round asked for while one runs runs once more after it', async () => {
    const { store, config, retention } = rig();
    store.rows.set('s1', [5, 100, 200]);
    let release!: () => void;
    const gate = new Promise<void>((r) => {
      release = r;
    });
    store.during = () => gate;
    const first = retention.run();
    config.put(RETENTION_KEY, '4');
    const second = retention.run();
    release();
    await Promise.all([first, second]);
    expect(store.calls.map((c) => c.hours)).toEqual([168, 4]);
    expect(store.rows.get('s1')).toEqual([]);
  });

  it('stop lets the DELETE under way finish and starts no other', async () => {
    const { store, retention } = rig();
    store.rows.set('s1', ages(30, 0, 0));
    store.rows.set('s2', ages(30, 0, 0));
    let release!: () => void;
    store.during = () =>
      new Promise<void>((r) => {
        release = r;
      });
    const round = retention.run();
    await new Promise((r) => setImmediate(r));
    const stopped = retention.stop();
    release();
    await Promise.all([round, stopped]);
    expect(store.calls).toHaveLength(1);
    expect(store.rows.get('s1')).toHaveLength(20);
    expect(store.rows.get('s2')).toHaveLength(30);
  });
});
