/**
 * A dependency back after a blip: its client's new connection turns an open breaker half-open at
 * once (CircuitBreaker.connectionRestored), so its probes run then and not only once
 * `reset_timeout_ms` (5 s seeded) has passed. Before, the cache stayed bypassed and mail stayed
 * held for the whole reset time after Redis or RabbitMQ were back (outside checks).
 *
 * Redis: a redis-server of this test's own, killed and started again on its port, and one extra
 * API instance from source beside the stack with it as its Redis (the stack's Redis is left
 * alone). RabbitMQ: a connection of this test's own to the stack's broker, closed by
 * `rabbitmqctl close_connection`, with a breaker registry of its own.
 */
import { type ChildProcess, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { newId } from '../src/domain/ids.js';
import { AmqpConnection } from '../src/mail/amqp-connection.js';
import { createNoopMetrics } from '../src/observability/metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { DependencyError } from '../src/resilience/errors.js';
import { recordingLogger } from '../src/testing/recording-logger.js';
import { binary } from '../stack/preflight.js';
import { rabbitEnv } from '../stack/rabbitmq.js';
import { topology } from '../stack/topology.js';
import { api } from './helpers/api.js';
import { etcdGet } from './helpers/etcd.js';
import { redisBreaker, startInstanceWithRedis } from './helpers/instance-with-redis.js';
import { redisAnswers, startRedis } from './helpers/redis-server.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { AMQP_URL } from './helpers/stack.js';
import { stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('redisback');
let redis: ChildProcess | undefined;

afterAll(async () => {
  stopStartedEntries();
  redis?.kill('SIGKILL');
  removeTenant(tenant);
  await rootQuery(node('shard-2', 'master').port, 'DELETE FROM books WHERE tenant_id = ?', [tenant]);
});

describe('an open breaker when its client connects again', () => {
  it('redis: the cache breaker leaves open before its reset time once Redis is back', async () => {
    const resetMs = Number(
      etcdGet('breakers/redis/reset_timeout_ms') ?? etcdGet('breakers/default/reset_timeout_ms'),
    );
    expect(resetMs).toBeGreaterThanOrEqual(5000);
    const port = await freePort('127.0.0.1');
    redis = startRedis(port);
    await redisAnswers(port);
    const base = await startInstanceWithRedis('redisback', `redis://127.0.0.1:${port}`);
    await createTenant(tenant, 'shard-2');
    // the book written straight into the master: what is under test is the cache's breaker
    const id = newId();
    await rootQuery(
      node('shard-2', 'master').port,
      `INSERT INTO books (tenant_id, id, isbn, title, author, copies, available, created_at, updated_at)
       VALUES (?, ?, '9780306406157', 'Back', 'Redis', 1, 1, NOW(3), NOW(3))`,
      [tenant, id],
    );
    const path = `/v1/books/${id}`;
    await waitFor(async () => (await api('GET', path, { tenant, base })).headers.get('x-cache') === 'HIT', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'a cached read',
    });

    redis.kill('SIGKILL');
    // reads fail over to the database; a few refused commands open the breaker
    const openedAt = await waitFor(
      async () => {
        expect((await api('GET', path, { tenant, base })).status).toBe(200);
        const b = (await redisBreaker(base)) as { state: string; since?: string } | undefined;
        return b?.state === 'open' ? Date.parse(b.since!) : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the redis breaker open' },
    );
    redis = startRedis(port);
    await redisAnswers(port);
    // ioredis reconnects on its own (backoff ≤ 2 s); its `ready` half-opens the breaker, whose
    // trials close it. Without that, it cannot leave `open` before openedAt + resetMs
    const leftAt = await waitFor(
      async () => ((await redisBreaker(base))?.state !== 'open' ? Date.now() : undefined),
      { timeoutMs: 15_000, intervalMs: 20, what: 'the redis breaker out of open' },
    );
    expect(leftAt - openedAt).toBeLessThan(resetMs);
    await waitFor(async () => (await api('GET', path, { tenant, base })).headers.get('x-cache') === 'HIT', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'reads cached again',
    });
  });

  it("rabbitmq: the worker's calls, refused while the breaker is open, reconnect beside it and pass before its reset time", async () => {
    const name = `reconnect-test-${randomBytes(3).toString('hex')}`;
    const { logger, lines } = recordingLogger();
    const breakers = new BreakerRegistry({
      config: new MemoryConfigStore(),
      logger,
      metrics: createNoopMetrics(),
    });
    const amqp = new AmqpConnection({ url: AMQP_URL, breakers, logger, name });
    const breaker = breakers.get('rabbitmq', 'rabbitmq');
    const resetMs = breaker.view().settings.reset_timeout_ms;
    try {
      await amqp.channel();
      const pid = execFileSync(
        binary('rabbitmqctl'),
        ['-n', topology.rabbitmq.node, 'list_connections', 'pid', 'client_properties', '-q'],
        { env: { ...process.env, ...rabbitEnv() }, encoding: 'utf8', timeout: 30_000 },
      )
        .split('\n')
        .find((line) => line.includes(`"${name}"`))
        ?.split('\t')[0];
      expect(pid).toMatch(/^<.+>$/);
      execFileSync(
        binary('rabbitmqctl'),
        ['-n', topology.rabbitmq.node, 'close_connection', pid!, 'a blip'],
        {
          env: { ...process.env, ...rabbitEnv() },
          timeout: 30_000,
        },
      );
      await waitFor(() => lines.some((l) => l.msg === 'amqp connection closed by the broker; reconnecting'), {
        timeoutMs: 10_000,
        what: 'the connection dropped',
      });
      // the calls of the blip fail and open the breaker
      for (let i = 0; i < 20 && breaker.state !== 'open'; i++)
        await breaker
          .execute(() => Promise.reject(new DependencyError('rabbitmq', 'rabbitmq: connection closed')))
          .catch(() => {});
      expect(breaker.state).toBe('open');
      const openedAt = Date.parse(breaker.view().since);
      // as the consumer's keep-alive: a call every 100 ms, each refused while the breaker is open
      const passedAt = await waitFor(
        async () =>
          (await amqp.run(async () => true, { consumerSide: true }).catch(() => false))
            ? Date.now()
            : undefined,
        { timeoutMs: resetMs + 5000, intervalMs: 100, what: 'a call through the rabbitmq breaker' },
      );
      expect(passedAt - openedAt).toBeLessThan(resetMs);
    } finally {
      await amqp.close();
    }
  });
});
