/**
 * `shardgate_mail_queue_messages{queue}`: messages waiting in the work queue, in all retry tiers
 * together (`queue="retry"`), and in the dead-letter queue, read from RabbitMQ at each scrape.
 * A dead-lettered mail is owed until an operator redrives it (`shardgate-ctl mail redrive`), so
 * `queue="shardgate.mail.dead"` above 0 is the thing to alert on; unlike the worker's
 * `mail_dead_lettered_total`, it survives worker restarts and falls when mails are redriven.
 * While RabbitMQ cannot be read (down, or its breaker open) the series are absent, not left at
 * their last values: a scrape never shows a depth that is not the queue's now (alert on
 * `absent(shardgate_mail_queue_messages{queue="shardgate.mail.dead"})` too). A scrape waits at
 * most QUEUE_SCRAPE_MS for the depths (absent after that): before, a frozen broker held the
 * worker's whole /metrics for the breaker's call timeout, 2 s, so a scraper with a shorter
 * timeout lost every worker series during a RabbitMQ outage (an outside check). A read still
 * running is waited for, not started again.
 */
import type { Metrics } from '../observability/metrics.js';
import { withDeadline } from '../resilience/with-deadline.js';
import type { AmqpConnection } from './amqp-connection.js';
import { DEAD_QUEUE, WORK_QUEUE } from './amqp-topology.js';
import { RETRY_QUEUES } from './retry-tiers.js';

/** how long a scrape waits for the queue depths */
export const QUEUE_SCRAPE_MS = 500;

type Depths = { work: number; retry: number; dead: number };

export function registerQueueGauges({ amqp, metrics }: { amqp: AmqpConnection; metrics: Metrics }): void {
  let reading: Promise<Depths> | undefined;
  const read = (): Promise<Depths> =>
    amqp.run(
      async (ch) => {
        const count = async (q: string) => (await ch.checkQueue(q)).messageCount;
        let retry = 0;
        for (const q of RETRY_QUEUES) retry += await count(q);
        return { work: await count(WORK_QUEUE), retry, dead: await count(DEAD_QUEUE) };
        // no publish: answered while the broker blocks publishing
      },
      { consumerSide: true },
    );
  metrics.gauge({
    name: 'mail_queue_messages',
    help: 'messages in the work queue, the retry tiers (together) and the dead-letter queue',
    labelNames: ['queue'],
    collect: async (g) => {
      try {
        if (!reading) {
          const started = read();
          reading = started;
          started
            .finally(() => {
              if (reading === started) reading = undefined;
            })
            .catch(() => {});
        }
        const depths = await withDeadline(reading, QUEUE_SCRAPE_MS, 'queue depths not read in time');
        g.set({ queue: WORK_QUEUE }, depths.work);
        g.set({ queue: 'retry' }, depths.retry);
        g.set({ queue: DEAD_QUEUE }, depths.dead);
      } catch {
        g.reset();
      }
    },
  });
}
