/**
 * What the email worker's RabbitMQ connections say in the log, against the local stack's broker,
 * on a connection of this test's own (so the worker's are not touched): a connection the broker
 * closes (an operator's `rabbitmqctl close_connection`) is named with the broker's reason, and a
 * connection that cannot be opened is said once, not at every retry. Before, an outside check saw
 * neither in the worker's log: amqplib emits no `error` for a forced close, and a connection the
 * broker refused (a vhost's connection limit) left deliveries standing still in silence.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { AmqpConnection } from '../src/mail/amqp-connection.js';
import { createNoopMetrics } from '../src/observability/metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { recordingLogger } from '../src/testing/recording-logger.js';
import { binary } from '../stack/preflight.js';
import { rabbitEnv } from '../stack/rabbitmq.js';
import { topology } from '../stack/topology.js';
import { faultRelay } from './helpers/fault-relay.js';
import { AMQP_URL } from './helpers/stack.js';
import { waitFor } from './helpers/wait-for.js';

function rabbitmqctl(args: string[]): string {
  return execFileSync(binary('rabbitmqctl'), ['-n', topology.rabbitmq.node, ...args], {
    env: { ...process.env, ...rabbitEnv() },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

function connectionOf(logger: ReturnType<typeof recordingLogger>['logger'], url: string, name: string) {
  const breakers = new BreakerRegistry({
    config: new MemoryConfigStore(),
    logger,
    metrics: createNoopMetrics(),
  });
  return new AmqpConnection({ url, breakers, logger, name });
}

describe('the email worker’s RabbitMQ connection in the log', () => {
  it('names a close the broker made, with its reason', async () => {
    const name = `log-test-${randomBytes(3).toString('hex')}`;
    const log = recordingLogger();
    const amqp = connectionOf(log.logger, AMQP_URL, name);
    try {
      await amqp.channel();
      const pid = rabbitmqctl(['list_connections', 'pid', 'client_properties', '-q'])
        .split('\n')
        .find((line) => line.includes(`"${name}"`))
        ?.split('\t')[0];
      expect(pid).toMatch(/^<.+>$/);
      rabbitmqctl(['close_connection', pid!, 'closed by hand in a test']);
      await waitFor(
        () => log.lines.some((l) => l.msg === 'amqp connection closed by the broker; reconnecting'),
        { timeoutMs: 10_000, what: 'the close in the log' },
      );
      const line = log.lines.find((l) => l.msg === 'amqp connection closed by the broker; reconnecting');
      expect(line).toMatchObject({
        level: 'warn',
        obj: { err: expect.stringContaining('closed by hand in a test') },
      });
      // and it connects again at the next call
      await expect(amqp.channel()).resolves.toBeDefined();
    } finally {
      await amqp.close();
    }
  });

  it('names a broker that stopped answering as such, not as a close the broker made', async () => {
    // the path to the broker goes silent (as a SIGSTOPped broker is to its clients): amqplib's
    // heartbeat timeout closes the connection after two missed heartbeats (5 s each)
    const relay = await faultRelay(topology.rabbitmq.port);
    const log = recordingLogger();
    const amqp = connectionOf(
      log.logger,
      `amqp://guest:guest@127.0.0.1:${relay.port}`,
      `hb-test-${randomBytes(3).toString('hex')}`,
    );
    try {
      await amqp.channel();
      relay.mode('blackhole');
      const lost = await waitFor(
        () => log.lines.find((l) => (l.msg ?? '').startsWith('amqp connection lost')),
        {
          timeoutMs: 20_000,
          intervalMs: 100,
          what: 'the heartbeat timeout in the log',
        },
      );
      expect(lost).toMatchObject({
        level: 'warn',
        obj: { err: expect.stringMatching(/heartbeat timeout/i) },
      });
      expect(lost.msg).toBe(
        'amqp connection lost: the broker sent nothing within two heartbeats (frozen or unreachable); reconnecting',
      );
      // before: "amqp connection closed by the broker", which sent an operator to the broker's log
      expect(log.lines.some((l) => l.msg === 'amqp connection closed by the broker; reconnecting')).toBe(
        false,
      );
    } finally {
      relay.close();
      await amqp.close();
    }
  }, 30_000);

  it('says once that a connection cannot be opened, however often it is tried', async () => {
    const port = await freePort(topology.host);
    const log = recordingLogger();
    const amqp = connectionOf(log.logger, `amqp://guest:guest@${topology.host}:${port}`, 'log-test-refused');
    try {
      for (let i = 0; i < 3; i++) await expect(amqp.channel()).rejects.toThrow();
      const failed = log.lines.filter((l) => l.msg === 'amqp connection could not be opened; retrying');
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({
        level: 'warn',
        obj: { err: expect.stringContaining('ECONNREFUSED') },
      });
    } finally {
      await amqp.close();
    }
  });

  it('names the possible causes when the broker refuses the vhost (here its connection limit)', async () => {
    // a vhost of this test's own, limited to 0 connections: amqplib words the refusal like a
    // missing vhost, so the line must name the limit among the causes
    const vhost = `log-test-${randomBytes(4).toString('hex')}`;
    rabbitmqctl(['add_vhost', vhost]);
    const log = recordingLogger();
    const amqp = connectionOf(log.logger, `${AMQP_URL}/${vhost}`, 'log-test-vhost-limit');
    try {
      rabbitmqctl(['set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*']);
      rabbitmqctl(['set_vhost_limits', '-p', vhost, '{"max-connections": 0}']);
      await expect(amqp.channel()).rejects.toThrow();
      const failed = log.lines.filter((l) => l.msg === 'amqp connection could not be opened; retrying');
      expect(failed).toHaveLength(1);
      expect(failed[0]?.obj).toMatchObject({
        reason: expect.stringContaining(
          "the vhost's or the user's connection limit (max-connections) is reached",
        ),
      });
    } finally {
      await amqp.close();
      rabbitmqctl(['delete_vhost', vhost]);
    }
  });
});
