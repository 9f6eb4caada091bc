import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';

/**
 * the connections amqplib "opened", each failing to give a channel (a broker at its channel_max)
 * unless `broker.channels`; `broker.connecting` holds a connect until it is resolved
 */
const models = vi.hoisted(() => [] as { closed: number; url: string; options: Record<string, unknown> }[]);
const broker = vi.hoisted(() => ({ channels: false, connecting: undefined as Promise<void> | undefined }));

vi.mock('./amqp-topology.js', () => ({ declareMailTopology: async () => {} }));
vi.mock('amqplib', () => ({
  default: {
    connect: async (url: string, options: Record<string, unknown>) => {
      await broker.connecting;
      const model = {
        closed: 0,
        url,
        options,
        on() {},
        createConfirmChannel: async () => {
          if (!broker.channels) throw new Error('no channel');
          return { on() {}, prefetch: async () => {} };
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

const { AmqpConnection, withHeartbeat } = await import('./amqp-connection.js');

describe('AmqpConnection', () => {
  beforeEach(() => {
    models.length = 0;
    broker.channels = false;
    broker.connecting = undefined;
  });

  it('closes a connection that was opening when close() was called, before close() resolves', async () => {
    const config = new MemoryConfigStore();
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    const amqp = new AmqpConnection({ url: 'amqp://localhost', breakers, logger: silentLogger });
    broker.channels = true;
    let connected = () => {};
    broker.connecting = new Promise((resolve) => {
      connected = resolve;
    });
    const opening = amqp.channel();
    const closing = amqp.close();
    connected();
    await closing;
    expect(models.map((m) => m.closed)).toEqual([1]);
    await expect(opening).rejects.toThrow('connection closed');
    // and none is opened after
    await expect(amqp.channel()).rejects.toThrow('connection closed');
    expect(models).toHaveLength(1);
  });

  it('while the breaker is open, a call tries a connection beside it, at most every 2 s (each refused one is a line in the broker log)', async () => {
    const config = new MemoryConfigStore();
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    const amqp = new AmqpConnection({ url: 'amqp://localhost', breakers, logger: silentLogger });
    const breaker = breakers.get('rabbitmq', 'rabbitmq');
    for (let i = 0; i < 5; i++)
      await breaker.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    expect(breaker.state).toBe('open');
    // the monotonic clock the pacing reads (and the breaker's open spell: 3.5 s of its 5 s pass)
    let t = performance.now();
    const now = vi.spyOn(performance, 'now');
    try {
      now.mockImplementation(() => t);
      // the broker refuses channels: each attempt opens a connection and closes it
      for (let i = 0; i < 5; i++) {
        await expect(amqp.run(async () => 1, { consumerSide: true })).rejects.toThrow();
        await new Promise((r) => setImmediate(r));
        t += 300;
      }
      expect(models).toHaveLength(1);
      t += 2000;
      await expect(amqp.run(async () => 1, { consumerSide: true })).rejects.toThrow();
      await new Promise((r) => setImmediate(r));
      expect(models).toHaveLength(2);
    } finally {
      now.mockRestore();
      await amqp.close();
    }
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

  it('asks for its heartbeat in the URL (amqplib reads it nowhere else) and gives the broker its name', async () => {
    const config = new MemoryConfigStore();
    const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
    const amqp = new AmqpConnection({
      url: 'amqp://u:p%40ss@broker:5673/vh',
      breakers,
      logger: silentLogger,
      name: 'w1-worker retries',
    });
    await expect(amqp.channel()).rejects.toThrow('no channel');
    expect(models[0]?.url).toBe('amqp://u:p%40ss@broker:5673/vh?heartbeat=5');
    expect(models[0]?.options.clientProperties).toEqual({ connection_name: 'w1-worker retries' });
    await amqp.close();
  });
});

describe('withHeartbeat', () => {
  it("adds the heartbeat to a URL's query, keeping what it has; one the URL names wins", () => {
    expect(withHeartbeat('amqp://localhost', 5)).toBe('amqp://localhost?heartbeat=5');
    expect(withHeartbeat('amqp://a:b@h:1/v?frameMax=8192', 5)).toBe(
      'amqp://a:b@h:1/v?frameMax=8192&heartbeat=5',
    );
    expect(withHeartbeat('amqps://h/v?heartbeat=30', 5)).toBe('amqps://h/v?heartbeat=30');
  });
});
