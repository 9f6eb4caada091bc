/**
 * The lost-mail sweep, run by the email worker next to the relay: mails the broker dropped
 * after it confirmed them (an operator's `purge_queue`, a `max-length` + `drop-head` policy, a
 * `message-ttl` policy without dead-lettering, a deleted queue) are published again.
 *
 * Such a mail's outbox row says published (`sent_at`) and never delivered (`delivered_at` NULL)
 * while no copy of it exists anywhere. Every `intervalMs` (60 s), when the broker shows that no
 * copy of a published mail can still be waiting — the work queue and every retry tier hold 0
 * ready messages, read through the `rabbitmq` breaker, AND this worker has no delivery in flight
 * and took none while the queues were read — the sweep sets `sent_at` back to NULL on each
 * shard (through that master's breaker) for up to `limit` rows published more than
 * `graceSeconds` ago (longer than a confirmed message takes to be consumed), never delivered
 * and not dead-lettered (`dead_lettered_at`: that copy waits in the dead-letter queue for an
 * operator). The relay then publishes them as any due row. One warning per shard and pass
 * names the count, and `shardgate_mail_lost_republished_total{shard}` counts them.
 *
 * Why re-publishing is safe even when a copy still existed (a race with the queue reads, or an
 * unacked delivery of ANOTHER worker, which the queues do not count): the consumer delivers
 * each outbox id once. OutboxStore.deliverBatch locks the rows (`FOR UPDATE`) and sends only
 * those without `delivered_at`; two copies of one id in one batch follow the first; two copies in
 * two batches or workers serialise on the row lock, and the later one sees `delivered_at` (or is
 * retried when the lock wait runs out) — a single-mail or a batch message alike, since a batch
 * message is split into single mails first. The sweep itself skips rows a delivery holds locked.
 *
 * Skipped passes (nothing changed, tried again at the next interval): publishing blocked (the
 * relay's breaker open or a resource alarm: the rows could not go out anyway), the queues not
 * readable (broker down, breaker open), any message ready in them, a delivery in flight here.
 * The first pass waits `firstPassMs` (90 s) after start: retry queues of older versions, which
 * the sweep does not read, are unbound at the worker's first connect and empty out into the work
 * queue within the longest tier's delay (64 s).
 *
 * Limits: a mail purged from the dead-letter queue is not sent again (its row stays marked); a
 * worker whose queues are never empty under sustained traffic delays the sweep until they are; a
 * copy held unacked by another worker is re-published and then acked as a duplicate.
 */
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import type { AmqpConnection } from './amqp-connection.js';
import { WORK_QUEUE } from './amqp-topology.js';
import type { OutboxStore } from './outbox-store.js';
import { RETRY_QUEUES } from './retry-tiers.js';

export interface LostMailSweepOptions {
  store: Pick<OutboxStore, 'shardIds' | 'republishLost'>;
  /** ready messages in the work queue and every retry tier together; rejects when unreadable */
  readyMessages: () => Promise<number>;
  /** ms until the relay may publish (0 = now): its breaker's wait, or a resource alarm */
  publishingBlockedForMs: () => number;
  /** this worker's deliveries: in flight now, and taken since start (MailConsumer.deliveries) */
  deliveries: () => { inFlight: number; taken: number };
  logger: Logger;
  metrics: Metrics;
  /** between passes (default 60 s) */
  intervalMs?: number;
  /** before the first pass (default 90 s) */
  firstPassMs?: number;
  /** rows published longer ago than this may be lost (default 120 s) */
  graceSeconds?: number;
  /** rows per shard and pass (default 1000) */
  limit?: number;
}

/** why a pass did nothing, or the rows it sent back per shard */
export type PassOutcome = { skipped: string } | { republished: Map<string, number> };

/** ready messages in the work queue and every retry tier, read on `amqp` (no publish) */
export function readyInMailQueues(amqp: AmqpConnection): () => Promise<number> {
  return () =>
    amqp.run(
      async (ch) => {
        let n = 0;
        for (const q of [...RETRY_QUEUES, WORK_QUEUE]) n += (await ch.checkQueue(q)).messageCount;
        return n;
      },
      { consumerSide: true },
    );
}

export class LostMailSweep {
  private timer: ReturnType<typeof setTimeout> | undefined;
  private running: Promise<PassOutcome> | undefined;
  private stopped = false;
  private readonly republished;
  private readonly lastPass;
  /**
   * one limiter per kind of failure and per shard: a second shard's failure, or the queues'
   * after a shard's, is said at once, not folded into the first one's ten minutes (a review)
   */
  private readonly failures = new Map<string, WarnLimiter>();

  constructor(private readonly opts: LostMailSweepOptions) {
    this.republished = opts.metrics.counter({
      name: 'mail_lost_republished_total',
      help: 'outbox rows published long ago, never delivered nor dead-lettered, that the worker published again (the broker had dropped them)',
      labelNames: ['shard'],
    });
    this.lastPass = opts.metrics.gauge({
      name: 'mail_lost_sweep_last_pass_timestamp_seconds',
      help: 'when the lost-mail sweep last looked at every shard (Unix time): a pass is skipped while the mail queues are not empty or deliveries are in flight, so an old value under sustained traffic means lost mails wait',
    });
  }

  private warnOnce(kind: string, obj: Record<string, unknown>, msg: string): void {
    let limiter = this.failures.get(kind);
    if (!limiter) {
      limiter = new WarnLimiter(this.opts.logger, 10 * 60_000);
      this.failures.set(kind, limiter);
    }
    limiter.warn(obj, msg);
  }

  /** a kind of failure that ended: its next occurrence is said at once */
  private failureEnded(kind: string): void {
    const limiter = this.failures.get(kind);
    if (!limiter?.warned) return;
    const unlogged = limiter.reset();
    this.opts.logger.info({ kind, unlogged }, 'lost-mail sweep works again');
  }

  start(): void {
    this.stopped = false;
    const next = (ms: number) => {
      this.timer = setTimeout(() => {
        void this.pass().finally(() => {
          if (!this.stopped) next(this.opts.intervalMs ?? 60_000);
        });
      }, ms);
      this.timer.unref?.();
    };
    next(this.opts.firstPassMs ?? 90_000);
  }

  /** One pass (tests call it directly). Never rejects. */
  pass(): Promise<PassOutcome> {
    this.running ??= this.passOnce().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async passOnce(): Promise<PassOutcome> {
    if (this.opts.publishingBlockedForMs() > 0) return { skipped: 'publishing blocked' };
    const before = this.opts.deliveries();
    if (before.inFlight > 0) return { skipped: 'deliveries in flight' };
    let ready: number;
    try {
      ready = await this.opts.readyMessages();
    } catch (error) {
      this.warnOnce(
        'queues',
        { err: String(error) },
        'lost-mail sweep skipped: the mail queues could not be read',
      );
      return { skipped: 'queues unreadable' };
    }
    this.failureEnded('queues');
    if (ready > 0) return { skipped: 'messages in the queues' };
    // a message taken while the queues were read may have moved from the work queue to a tier
    // behind the reads: the pass is not sure then
    const after = this.opts.deliveries();
    if (after.inFlight > 0 || after.taken !== before.taken) return { skipped: 'deliveries in flight' };
    const grace = this.opts.graceSeconds ?? 120;
    const republished = new Map<string, number>();
    let everyShard = true;
    for (const shard of this.opts.store.shardIds()) {
      if (this.stopped) {
        everyShard = false;
        break;
      }
      try {
        const { count, oldestSentAt } = await this.opts.store.republishLost(
          shard,
          grace,
          this.opts.limit ?? 1000,
        );
        this.republished.inc({ shard }, count);
        this.failureEnded(`shard ${shard}`);
        if (count === 0) continue;
        republished.set(shard, count);
        this.opts.logger.warn(
          { shard, count, oldestSentAt: oldestSentAt?.toISOString() },
          `re-publishing ${count} mails published more than ${grace} s ago (the oldest at ${
            oldestSentAt?.toISOString() ?? '?'
          }) with no delivery record: a broker dropped them (purge, drop-head, TTL?)`,
        );
      } catch (error) {
        everyShard = false;
        this.warnOnce(`shard ${shard}`, { shard, err: String(error) }, 'lost-mail sweep failed on a shard');
      }
    }
    // a metric whose value is a Unix time (when the last full pass ended): wall clock
    if (everyShard) this.lastPass.set({}, Date.now() / 1000);
    return { republished };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
