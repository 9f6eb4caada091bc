/**
 * Outbox retention, run by the email worker: on every shard master named in etcd, delete the
 * outbox rows delivered, and created, longer ago than `mail/outbox_retention_hours` (default 168,
 * a week; 0 keeps every row). Without it the outbox grows by one row per email for ever.
 *
 * A round deletes per shard in batches of `batchSize` rows (one autocommit DELETE each, oldest
 * first, at least `pauseMs` and four times the last DELETE's duration apart, so the master and
 * its replicas serve writes in between) until a batch comes back short. Rounds run every `intervalMs`, and at once when the key changes. Rows never
 * delivered (pending, retrying, dead-lettered) stay: they are the record of a mail still owed or
 * lost. What makes deleting safe: OutboxStore.purgeDelivered's contract (a redelivered message
 * for a purged row is told from a missing one by its id's time and is not mailed again).
 *
 * Several workers may run: their DELETEs meet on the same oldest rows and one waits for the
 * other's row locks, then finds them gone. A shard that is down or whose breaker is open is
 * skipped until the next round; the write path never waits for a purge.
 */
import type { ConfigStore } from '../config/interface.js';
import type { ScalarKey } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DependencyError } from '../resilience/errors.js';
import type { OutboxStore } from './outbox-store.js';

export const RETENTION_KEY: ScalarKey = 'mail/outbox_retention_hours';

export interface OutboxRetentionOptions {
  store: Pick<OutboxStore, 'shardIds' | 'purgeDelivered'>;
  config: ConfigStore;
  logger: Logger;
  metrics: Metrics;
  /** between rounds (default 60 s) */
  intervalMs?: number;
  /** rows per DELETE (default 1000) */
  batchSize?: number;
  /** least pause between two DELETEs of one round (default 100 ms; at least 4× the last DELETE) */
  pauseMs?: number;
}

export class OutboxRetention {
  private timer: ReturnType<typeof setInterval> | undefined;
  private unsubscribe: (() => void) | undefined;
  private round: Promise<void> | undefined;
  private again = false;
  private stopped = false;
  private readonly purged;

  constructor(private readonly opts: OutboxRetentionOptions) {
    this.purged = opts.metrics.counter({
      name: 'outbox_purged_total',
      help: 'delivered outbox rows deleted after the retention',
      labelNames: ['shard'],
    });
    opts.metrics.gauge({
      name: 'outbox_retention_hours',
      help: 'outbox retention in force (0 = rows are kept)',
      collect: (g) => g.set({}, opts.config.current().mail.outboxRetentionHours),
    });
  }

  start(): void {
    this.stopped = false;
    this.unsubscribe = this.opts.config.onChange((_snap, changes) => {
      if (changes.some((c) => c.key === RETENTION_KEY)) void this.run();
    });
    this.timer = setInterval(() => void this.run(), this.opts.intervalMs ?? 60_000);
    void this.run();
  }

  /**
   * One round over every shard; resolves when it is done. Asked for while a round runs, it runs
   * once more after that one (a lowered retention applies without waiting for the interval).
   * Never rejects: failures are logged per shard.
   */
  run(): Promise<void> {
    if (this.round) {
      this.again = true;
      return this.round;
    }
    this.round = (async () => {
      do {
        this.again = false;
        for (const shardId of this.opts.store.shardIds()) {
          if (this.stopped) break;
          await this.purgeShard(shardId);
        }
      } while (this.again && !this.stopped);
    })().finally(() => {
      this.round = undefined;
    });
    return this.round;
  }

  private async purgeShard(shardId: string): Promise<void> {
    const batch = this.opts.batchSize ?? 1000;
    let total = 0;
    try {
      while (!this.stopped) {
        // read per batch: a changed retention applies from the next DELETE on
        const hours = this.opts.config.current().mail.outboxRetentionHours;
        if (hours === 0 || !this.opts.store.shardIds().includes(shardId)) break;
        const started = performance.now();
        const n = await this.opts.store.purgeDelivered(shardId, hours, batch);
        total += n;
        // 0 too: the shard's series shows from its first round on
        this.purged.inc({ shard: shardId }, n);
        if (n < batch) break;
        // a DELETE slowed by a busy master makes the next one wait longer: a purge takes at
        // most a fifth of the time it runs
        const pause = Math.max(this.opts.pauseMs ?? 100, 4 * (performance.now() - started));
        await new Promise((r) => setTimeout(r, pause));
      }
    } catch (error) {
      const log = error instanceof DependencyError ? this.opts.logger.warn : this.opts.logger.error;
      log.call(
        this.opts.logger,
        { shard: shardId, err: String(error), purged: total },
        'outbox purge failed',
      );
      return;
    }
    if (total > 0) this.opts.logger.info({ shard: shardId, purged: total }, 'outbox rows purged');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    this.unsubscribe?.();
    await this.round;
  }
}
