import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';

/** the connections amqplib "opened", each failing to give a channel (a broker at its channel_max) */
const models = vi.hoisted(() => [] as { closed: number }[]);

vi.mock('amqplib', () => ({
  default: {
    connect: async () => {
      const model = {
        closed: 0,
        on() {},
        createConfirmChannel: async () => {
          throw new Error('no channel');
        },
        close: async () => {
          model.closed++;
        },
      };
      models.push(model);
      return model;
    },
  },
}));

const { AmqpConnection } = await import('./amqp-connection.js');

describe('AmqpConnection', () => {
  beforeEach(() => {
    models.length = 0;
  });

  it('closes a connection whose channels or topology could not be set up', async () => {
    const config = new MemoryConfigStore();
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    const amqp = new AmqpConnection({ url: 'amqp://localhost', breakers, logger: silentLogger });
    await expect(amqp.channel()).rejects.toThrow('no channel');
    await expect(amqp.channel()).rejects.toThrow('no channel');
    expect(models.map((m) => m.closed)).toEqual([1, 1]);
    await amqp.close();
  });
});
