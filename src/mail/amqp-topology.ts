/**
 * The RabbitMQ topology of the email pipeline, declared idempotently at every (re)connect:
 * - `shardgate.mail` (direct, durable) → quorum queue `shardgate.mail.work` (key `mail`);
 * - `shardgate.mail.retry` (direct) → one quorum queue per delay of retry-tiers.ts
 *   (`shardgate.mail.delay.<n>s`, key `shardgate.mail.retry.<n>s`), each with `x-message-ttl` =
 *   its delay and dead-lettering back to `shardgate.mail` / `mail`, at least once
 *   (retryQueueArguments);
 * - `shardgate.mail.dead` (fanout) → quorum queue `shardgate.mail.dead`: messages that failed
 *   the configured number of attempts, kept for an operator (`shardgate-ctl mail dead-letters`,
 *   `mail redrive`: control-plane/commands/mail.ts).
 */
import type { Channel, ChannelModel } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import { RETRY_DELAYS_MS, retryQueueName, retryRoutingKey } from './retry-tiers.js';

export const MAIL_EXCHANGE = 'shardgate.mail';
export const MAIL_ROUTING_KEY = 'mail';
export const WORK_QUEUE = 'shardgate.mail.work';
export const RETRY_EXCHANGE = 'shardgate.mail.retry';
export const DEAD_EXCHANGE = 'shardgate.mail.dead';
export const DEAD_QUEUE = 'shardgate.mail.dead';

const quorum = { durable: true, arguments: { 'x-queue-type': 'quorum' } };

/**
 * A retry tier's arguments. Its messages expire after the tier's delay and are dead-lettered
 * back to the work queue AT LEAST ONCE: a message leaves the tier only once the work queue has
 * taken it. The quorum queue default, at-most-once, drops a message the work queue cannot take
 * at that moment; a broker restarted after a crash did that to every mail whose delay had run
 * out while it was down, because the tiers come up before the work queue's leader is known
 * ("leader not known. Command is dropped" in the broker's log), and nothing reported the loss.
 * At-least-once needs `reject-publish` overflow (RabbitMQ ≥ 3.10). A copy dead-lettered twice is
 * mailed once: the worker acks a message whose outbox row is delivered as a duplicate.
 */
export function retryQueueArguments(delayMs: number): Record<string, unknown> {
  return {
    'x-queue-type': 'quorum',
    'x-message-ttl': delayMs,
    'x-dead-letter-exchange': MAIL_EXCHANGE,
    'x-dead-letter-routing-key': MAIL_ROUTING_KEY,
    'x-dead-letter-strategy': 'at-least-once',
    'x-overflow': 'reject-publish',
  };
}

/**
 * Declares the topology on channels of `model` (each closed afterwards), then retires the retry
 * tiers of older versions: queues named like the routing keys, with at-most-once dead-lettering.
 * Such a queue is unbound first — its routing key reaches the new tier from then on, also from
 * a worker of the older version still running — and deleted once empty; until then its
 * messages still reach the work queue when their delay runs out, and a second look after the
 * longest delay (and later connects: see legacyRetirement) deletes it. Unbound, nothing can arrive in it between
 * the count and the delete. Failures of that second look are only logged.
 */
export async function declareMailTopology(model: ChannelModel, logger: Logger): Promise<void> {
  await withChannel(model, async (ch) => {
    await ch.assertExchange(MAIL_EXCHANGE, 'direct', { durable: true });
    await ch.assertExchange(RETRY_EXCHANGE, 'direct', { durable: true });
    await ch.assertExchange(DEAD_EXCHANGE, 'fanout', { durable: true });
    await ch.assertQueue(WORK_QUEUE, quorum);
    await ch.bindQueue(WORK_QUEUE, MAIL_EXCHANGE, MAIL_ROUTING_KEY);
    await ch.assertQueue(DEAD_QUEUE, quorum);
    await ch.bindQueue(DEAD_QUEUE, DEAD_EXCHANGE, '');
    for (const delay of RETRY_DELAYS_MS) {
      const q = retryQueueName(delay);
      await ch.assertQueue(q, { durable: true, arguments: retryQueueArguments(delay) });
      await ch.bindQueue(q, RETRY_EXCHANGE, retryRoutingKey(delay));
    }
  });
  if (performance.now() - legacyRetirement.allGoneAt < LEGACY_RECHECK_MS) return;
  if (await retireLegacyQueues(model, logger)) {
    const timer = setTimeout(() => {
      retireLegacyQueues(model, logger).catch((error: unknown) =>
        logger.warn(
          { err: (error as Error).message },
          'could not retire old retry queues; next connect tries again',
        ),
      );
    }, RETRY_DELAYS_MS.at(-1)! + 5000);
    timer.unref();
  }
}

/**
 * When a look found every legacy queue missing (ms since the epoch): the connects of this process
 * in the next LEGACY_RECHECK_MS (a reconnect, its other connections) skip the look. Each look at
 * a missing queue is a passive declare the broker refuses with 404 and logs as an error, 14
 * lines a connect (an outside check). Not for good: a worker of the older version still running
 * in a rolling upgrade declares its queue again when it reconnects, and while that queue is bound
 * each retry is routed to it and to the new tier alike (two copies; the second is acked as a
 * duplicate once the mail is delivered). A connect after LEGACY_RECHECK_MS looks again
 * (`allGoneAt`: performance.now(), so a step of the wall clock neither stops nor hastens that).
 */
export const legacyRetirement = { allGoneAt: Number.NEGATIVE_INFINITY };

/** how long a look that found every legacy queue gone spares the next connects theirs */
export const LEGACY_RECHECK_MS = 10 * 60_000;

/** true while one of them still holds messages */
async function retireLegacyQueues(model: ChannelModel, logger: Logger): Promise<boolean> {
  let holding = false;
  let missing = 0;
  for (const delay of RETRY_DELAYS_MS) {
    const legacy = retryRoutingKey(delay);
    const held = await retireLegacyQueue(model, legacy, delay);
    if (held === -1) missing++;
    if (held > 0) {
      holding = true;
      logger.info(
        { queue: legacy, messages: held },
        'retry queue of an older version unbound; it is deleted once its messages went back to the work queue',
      );
    }
  }
  legacyRetirement.allGoneAt =
    missing === RETRY_DELAYS_MS.length ? performance.now() : Number.NEGATIVE_INFINITY;
  return holding;
}

/** -1: no such queue; 0: deleted; n > 0: unbound, still holding n messages */
async function retireLegacyQueue(model: ChannelModel, q: string, delay: number): Promise<number> {
  let messages: number;
  try {
    // passive: a missing queue closes the channel with 404
    messages = (await withChannel(model, (ch) => ch.checkQueue(q))).messageCount;
  } catch (error) {
    if ((error as { code?: number }).code === 404) return -1;
    throw error;
  }
  await withChannel(model, async (ch) => {
    await ch.unbindQueue(q, RETRY_EXCHANGE, retryRoutingKey(delay));
    messages = (await ch.checkQueue(q)).messageCount;
    // not `ifEmpty` (quorum queues refuse it, closing the connection): nothing routes here now
    if (messages === 0) await ch.deleteQueue(q);
  });
  return messages;
}

/** runs `fn` on a channel of its own: a refused call (404, 406) closes only that channel */
async function withChannel<T>(model: ChannelModel, fn: (ch: Channel) => Promise<T>): Promise<T> {
  const ch = await model.createChannel();
  // the broker's close of a refused call also arrives as an 'error' event
  ch.on('error', () => {});
  try {
    return await fn(ch);
  } finally {
    await ch.close().catch(() => {});
  }
}
