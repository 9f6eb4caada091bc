/**
 * `shardgate_mail_queue_messages{queue}`: messages waiting in the work queue, in all retry tiers
 * together (`queue="retry"`), and in the dead-letter queue, read from RabbitMQ at each scrape.
 * A dead-lettered mail is owed until an operator redrives it (`shardgate-ctl mail redrive`), so
 * `queue="shardgate.mail.dead"` above 0 is the thing to alert on; unlike the worker's
 * `mail_dead_lettered_total`, it survives worker restarts and falls when mails are redriven.
 * While RabbitMQ cannot be read (down, or its breaker open) the series are absent, not left at
 * their last values: a scrape never shows a depth that is not the queue's now (alert on
 * `absent(shardgate_mail_queue_messages{queue="shardgate.mail.dead"})` too).
 */
import type { Metrics } from '../observability/metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { DEAD_QUEUE, WORK_QUEUE } from './amqp-topology.js';
import { RETRY_QUEUES } from './retry-tiers.js';

export function registerQueueGauges({ amqp, metrics }: { amqp: AmqpConnection; metrics: Metrics }): void {
  metrics.gauge({
    name: 'mail_queue_messages',
    help: 'messages in the work queue, the retry tiers (together) and the dead-letter queue',
    labelNames: ['queue'],
    collect: async (g) => {
      try {
        const depths = await amqp.run(
          async (ch) => {
            const count = async (q: string) => (await ch.checkQueue(q)).messageCount;
            let retry = 0;
            for (const q of RETRY_QUEUES) retry += await count(q);
            return { work: await count(WORK_QUEUE), retry, dead: await count(DEAD_QUEUE) };
            // no publish: answered while the broker blocks publishing
          },
          { consumerSide: true },
        );
        g.set({ queue: WORK_QUEUE }, depths.work);
        g.set({ queue: 'retry' }, depths.retry);
        g.set({ queue: DEAD_QUEUE }, depths.dead);
      } catch {
        g.reset();
      }
    },
  });
}
