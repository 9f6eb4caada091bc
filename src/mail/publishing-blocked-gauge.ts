/**
 * `shardgate_amqp_publishing_blocked{connection}`: 1 while RabbitMQ blocks that publishing
 * connection of the email worker (a memory or disk alarm), else 0. `outbox`: the relay's, the
 * outbox is held (mails wait in it). `retries`: failed mails' retries wait there, each holding one
 * of the consumer's prefetched messages, so consumption stops once they all wait. The broker
 * tells only a connection that publishes during the alarm: a series reads 0 until its connection
 * tried (alert on the max over both).
 */
import type { Metrics } from '../observability/metrics.js';
import type { AmqpConnection } from './amqp-connection.js';

export function registerPublishingBlockedGauge(
  metrics: Metrics,
  connections: Readonly<Record<'outbox' | 'retries', Pick<AmqpConnection, 'publishingBlocked'>>>,
): void {
  metrics.gauge({
    name: 'amqp_publishing_blocked',
    help: '1 while RabbitMQ blocks this publishing connection of the worker (a memory or disk alarm), else 0',
    labelNames: ['connection'],
    collect: (g) => {
      for (const [connection, amqp] of Object.entries(connections))
        g.set({ connection }, amqp.publishingBlocked() === undefined ? 0 : 1);
    },
  });
}
