/**
 * The email worker's outbox gauges, read from every shard master at scrape time:
 * - `outbox_backlog{shard}`: unsent outbox rows;
 * - `outbox_oldest_unsent_seconds{shard}`: how long the oldest unsent row that was due
 *   (`available_at` passed) has waited, by the master's clock; 0 when none waits. The backlog
 *   says how much mail is stuck, this how late it is: a relay that cannot publish (RabbitMQ down,
 *   its breaker open) shows here within a scrape, while a burst the relay is working through stays
 *   at a second or two (an outside check found no such metric). A row the lost-mail sweep puts
 *   back counts from when it was first due: the mail is that late.
 *
 * Each gauge reads on its own (OutboxStore.backlog, .oldestDueWait; the age is one index entry,
 * the count a range that grows with the backlog). Failure modes: every shard is read at once,
 * each given BACKLOG_SCRAPE_MS — a master that hangs (a COMMIT waiting for disk space holds its
 * reads too) kept the worker's /metrics 3.4 s (an outside check); a shard that does not answer in
 * time keeps its last value; a shard no longer configured loses its series.
 */
import { lastValuePerShard } from '../observability/last-value-per-shard.js';
import type { Metrics } from '../observability/metrics.js';
import type { OutboxStore } from './outbox-store.js';

/** how long a scrape waits for a shard's value; its last one is shown after that */
const BACKLOG_SCRAPE_MS = 500;

type Store = Pick<OutboxStore, 'shardIds' | 'backlog' | 'oldestDueWait'>;

export function registerOutboxGauges({ metrics, store }: { metrics: Metrics; store: Store }): void {
  metrics.gauge({
    name: 'outbox_backlog',
    help: 'unsent outbox rows per shard master',
    labelNames: ['shard'],
    collect: lastValuePerShard(
      () => store.shardIds(),
      (id) => store.backlog(id),
      BACKLOG_SCRAPE_MS,
    ),
  });
  metrics.gauge({
    name: 'outbox_oldest_unsent_seconds',
    help: 'how long the oldest due, unsent outbox row of each shard has waited (0 when none)',
    labelNames: ['shard'],
    collect: lastValuePerShard(
      () => store.shardIds(),
      (id) => store.oldestDueWait(id),
      BACKLOG_SCRAPE_MS,
    ),
  });
}
