/**
 * The email worker's outbox gauges, read from every shard master at scrape time:
 * - `outbox_backlog{shard}`: unsent outbox rows;
 * - `outbox_oldest_unsent_seconds{shard}`: how long the oldest unsent row that was due
 *   (`available_at` passed) has waited for the relay, by the master's clock; 0 when none waits.
 *   The backlog says how much mail is stuck, this how late it is: a relay that cannot publish
 *   (RabbitMQ down, its breaker open) shows here within a scrape, while a burst the relay is
 *   working through stays at a second or two (an outside check found no such metric).
 *
 * One read per shard serves both (OutboxStore.backlog: the count and the age in one statement
 * from the pending index). Failure modes: every shard is read at once, each given
 * BACKLOG_SCRAPE_MS — a master that hangs (a COMMIT waiting for disk space holds its reads too)
 * kept the worker's /metrics 3.4 s (an outside check); a shard that does not answer in time
 * keeps its last values; a shard no longer configured loses its series.
 */
import type { Metrics } from '../observability/metrics.js';
import { withDeadline } from '../resilience/with-deadline.js';
import type { OutboxBacklog, OutboxStore } from './outbox-store.js';

/** how long a scrape waits for a shard's backlog; its last values are shown after that */
const BACKLOG_SCRAPE_MS = 500;
/** a read this recent serves the other gauge of the same scrape */
const SHARED_READ_MS = 1000;

export function registerOutboxGauges({
  metrics,
  store,
}: {
  metrics: Metrics;
  store: Pick<OutboxStore, 'shardIds' | 'backlog'>;
}): void {
  let last = new Map<string, OutboxBacklog>();
  let read: { at: number; done: Promise<Map<string, OutboxBacklog>> } | undefined;
  const readAll = async (): Promise<Map<string, OutboxBacklog>> => {
    const now = new Map<string, OutboxBacklog>();
    await Promise.all(
      store.shardIds().map(async (id) => {
        try {
          now.set(id, await withDeadline(store.backlog(id), BACKLOG_SCRAPE_MS, 'backlog read timed out'));
        } catch {
          const kept = last.get(id);
          if (kept !== undefined) now.set(id, kept);
        }
      }),
    );
    last = now;
    return now;
  };
  /** the backlogs of this scrape: one read for both gauges */
  const backlogs = () => {
    if (read === undefined || performance.now() - read.at > SHARED_READ_MS)
      read = { at: performance.now(), done: readAll() };
    return read.done;
  };
  metrics.gauge({
    name: 'outbox_backlog',
    help: 'unsent outbox rows per shard master',
    labelNames: ['shard'],
    collect: async (g) => {
      const now = await backlogs();
      g.reset();
      for (const [shard, b] of now) g.set({ shard }, b.unsent);
    },
  });
  metrics.gauge({
    name: 'outbox_oldest_unsent_seconds',
    help: 'how long the oldest due, unsent outbox row of each shard has waited for the relay (0 when none)',
    labelNames: ['shard'],
    collect: async (g) => {
      const now = await backlogs();
      g.reset();
      for (const [shard, b] of now) g.set({ shard }, b.oldestWaitSeconds);
    },
  });
}
