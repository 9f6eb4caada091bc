/**
 * The RabbitMQ topology of the email pipeline, declared idempotently at every (re)connect:
 * - `shardgate.mail` (direct, durable) → quorum queue `shardgate.mail.work` (key `mail`);
 * - `shardgate.mail.retry` (direct) → one quorum queue per delay of retry-tiers.ts, each with
 *   `x-message-ttl` = its delay and dead-lettering back to `shardgate.mail` / `mail`;
 * - `shardgate.mail.dead` (fanout) → quorum queue `shardgate.mail.dead`: messages that failed
 *   the configured number of attempts, kept for an operator (`shardgate-ctl mail dead-letters`,
 *   `mail redrive`: control-plane/commands/mail.ts).
 */
import type { Channel } from 'amqplib';
import { RETRY_DELAYS_MS, retryQueueName } from './retry-tiers.js';

export const MAIL_EXCHANGE = 'shardgate.mail';
export const MAIL_ROUTING_KEY = 'mail';
export const WORK_QUEUE = 'shardgate.mail.work';
export const RETRY_EXCHANGE = 'shardgate.mail.retry';
export const DEAD_EXCHANGE = 'shardgate.mail.dead';
export const DEAD_QUEUE = 'shardgate.mail.dead';

const quorum = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

export async function declareMailTopology(ch: Channel): Promise<void> {
  await ch.assertExchange(MAIL_EXCHANGE, 'direct', { durable: true });
  await ch.assertExchange(RETRY_EXCHANGE, 'direct', { durable: true });
  await ch.assertExchange(DEAD_EXCHANGE, 'fanout', { durable: true });
  await ch.assertQueue(WORK_QUEUE, quorum);
  await ch.bindQueue(WORK_QUEUE, MAIL_EXCHANGE, MAIL_ROUTING_KEY);
  for (const delay of RETRY_DELAYS_MS) {
    const q = retryQueueName(delay);
    await ch.assertQueue(q, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-message-ttl': delay,
        'x-dead-letter-exchange': MAIL_EXCHANGE,
        'x-dead-letter-routing-key': MAIL_ROUTING_KEY,
      },
    });
    await ch.bindQueue(q, RETRY_EXCHANGE, q);
  }
  await ch.assertQueue(DEAD_QUEUE, quorum);
  await ch.bindQueue(DEAD_QUEUE, DEAD_EXCHANGE, '');
}
