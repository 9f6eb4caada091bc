import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';
import { OutboxStore } from './outbox-store.js';

// port 1 on the loopback: nothing listens, so a connection is refused at once
const shard = (port: number) => JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [] });

function store(config: MemoryConfigStore) {
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  return new OutboxStore({ config, breakers, logger: silentLogger, user: 'u', password: () => undefined });
}

describe('OutboxStore', () => {
  it("answers a refused master with a DependencyError counted by the shard's master breaker", async () => {
    const config = new MemoryConfigStore({ initial: { 'shards/shard-1': shard(1) } });
    const outbox = store(config);
    try {
      const error = await outbox.backlog('shard-1').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(DependencyError);
      expect((error as DependencyError).dependency).toBe('mysql-master:shard-1');
    } finally {
      await outbox.close();
    }
  });

  it('follows the shard map until it is closed, and opens no pool after', async () => {
    const config = new MemoryConfigStore({ initial: { 'shards/shard-1': shard(1) } });
    const outbox = store(config);
    config.put('shards/shard-2', shard(1));
    expect(outbox.shardIds().sort()).toEqual(['shard-1', 'shard-2']);
    await outbox.close();
    config.put('shards/shard-3', shard(1));
    expect(outbox.shardIds()).toEqual([]);
  });
});
