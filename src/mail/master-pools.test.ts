import type { Pool } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { MasterPools } from './master-pools.js';
import type { OutboxPoolOptions } from './outbox-pool.js';

/** a pool that hands out a connection after `delayMs` and counts what comes back */
class FakePool {
  handedOut = 0;
  returned = 0;
  destroyed = 0;
  rollbacks = 0;
  ended = false;
  /** a COMMIT that waits (for disk space) until this resolves; a ROLLBACK queues behind it */
  commitWaits: Promise<void> | undefined;
  constructor(
    readonly options: OutboxPoolOptions,
    private readonly delayMs = () => 0,
  ) {}
  getConnection() {
    return new Promise((resolve) =>
      setTimeout(() => {
        this.handedOut++;
        const back = () => {
          this.returned++;
        };
        let queue: Promise<unknown> = Promise.resolve();
        resolve({
          beginTransaction: async () => {},
          commit: () => {
            queue = this.commitWaits ?? Promise.resolve();
            return queue;
          },
          rollback: async () => {
            this.rollbacks++;
            await queue;
          },
          query: async () => [[]],
          release: back,
          destroy: () => {
            this.destroyed++;
            back();
          },
        });
      }, this.delayMs()),
    );
  }
  async query() {
    return [[]];
  }
  async end() {
    this.ended = true;
  }
}

const shard = (master: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ master: { host: master, port: 3306 }, ...extra });

function setup(initial: Record<string, string>, delayMs?: () => number) {
  const config = new MemoryConfigStore({ initial });
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  const pools: FakePool[] = [];
  const masters = new MasterPools({
    config,
    breakers,
    user: 'u',
    password: () => 'p',
    createPool: (options) => {
      const pool = new FakePool(options, delayMs);
      pools.push(pool);
      return pool as unknown as Pool;
    },
  });
  return { config, masters, pools };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('MasterPools', () => {
  it('destroys the connection of a COMMIT the breaker gave up on, at once: no ROLLBACK queued behind it', async () => {
    const { masters, pools } = setup({
      'shards/s1': shard('db1'),
      'breakers/mysql-master/call_timeout_ms': '40',
    });
    let free = () => {};
    pools[0]!.commitWaits = new Promise<void>((r) => (free = r)); // a full binlog: the COMMIT waits
    const started = performance.now();
    const done = masters
      .transaction('s1', async () => 'marked')
      .then(
        () => 'committed',
        (e: Error) => e.name,
      );
    expect(await done).toBe('CallTimeoutError');
    expect(performance.now() - started).toBeLessThan(1000); // before: until the disk had room
    expect(pools[0]!.destroyed).toBe(1);
    expect(pools[0]!.rollbacks).toBe(0);
    free();
    await masters.close();
  });

  it('releases a connection the pool hands over after the breaker gave up waiting for it', async () => {
    const { masters, pools } = setup(
      { 'shards/s1': shard('db1'), 'breakers/mysql-master/call_timeout_ms': '40' },
      () => 120,
    );
    const error = await masters.transaction('s1', async () => 'claimed').catch((e: unknown) => e);
    expect((error as Error).name).toBe('CallTimeoutError');
    await sleep(200);
    expect(pools[0]!.handedOut).toBe(1);
    expect(pools[0]!.returned).toBe(1);
    await masters.close();
  });

  it('keeps the pool when only replicas or weights of the shard change', async () => {
    const { config, masters, pools } = setup({ 'shards/s1': shard('db1') });
    config.put('shards/s1', shard('db1', { replicas: [{ host: 'r1', port: 3306, weight: 3 }] }));
    expect(pools).toHaveLength(1);
    expect(pools[0]!.ended).toBe(false);
    await masters.close();
  });

  it('ends the pool of a replaced master only once its transaction in flight is done', async () => {
    const { config, masters, pools } = setup({ 'shards/s1': shard('db1') });
    let finish = () => {};
    const running = masters.transaction('s1', () => new Promise<void>((r) => (finish = r)));
    await sleep(10);
    config.put('shards/s1', shard('db2'));
    expect(pools.map((p) => p.options.host)).toEqual(['db1', 'db2']);
    expect(pools[0]!.ended).toBe(false);
    finish();
    await running;
    expect(pools[0]!.returned).toBe(1);
    expect(pools[0]!.ended).toBe(true);
    await masters.close();
  });
});
