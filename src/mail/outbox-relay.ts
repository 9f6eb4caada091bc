/**
 * Relay: moves outbox rows of every shard to RabbitMQ. Several relays (worker processes) may run:
 * rows are claimed with SKIP LOCKED. Per shard, a loop claims a batch, publishes it as persistent
 * messages of up to `mailsPerMessage` rows each (mail-message.ts; the broker and the consumer
 * then handle one message per chunk, not per mail) with publisher confirms, and only then marks
 * the rows sent (OutboxStore).
 * Polls every `idleMs` when a shard has nothing due, at once again after a full batch, and backs
 * off (the breaker's time left, or `idleMs` × 10) while RabbitMQ or the shard is unavailable.
 * Round trips to the shard master: a claimed batch is BEGIN, SELECT … FOR UPDATE SKIP LOCKED,
 * UPDATE, COMMIT (session settings are per connection, outbox-pool.ts); after a poll that found
 * nothing, the next one first asks with one plain SELECT (OutboxStore.hasDue) and opens a claim
 * transaction only when that sees a due row — an idle poll is that one SELECT.
 * Shards added to or removed from etcd are followed on the next round.
 *
 * A claim whose COMMIT fails after the broker confirmed its publish (a master out of disk, the
 * connection lost) leaves its rows unsent: the relay remembers their ids (`publishedUnmarked`, up
 * to PUBLISHED_UNMARKED_MAX, each for PUBLISHED_UNMARKED_TTL_MS from its last failed claim) and,
 * when it claims them again, marks them sent without publishing them again — before, a full
 * binlog disk had every due row published once a second until the disk had room. Another relay
 * (worker process) claiming them, or this one after a restart, publishes them again: one more
 * copy per process (the consumer records it, or sends it when no process that sent the mail
 * takes it). The time limit: a COMMIT reported failed that did apply leaves its ids here; should
 * the broker then lose the message, the lost-mail sweep's reset (minutes later) must publish it.
 * Only a claim that reaches its publish refreshes an id: after a minute in which none did (the
 * master unreachable, its breaker open, the broker blocking publishes), the rows are published
 * once more — a copy the consumer records, not a second mail from a process that sent it.
 */

import type { ConfirmChannel } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { BreakerOpenError, DependencyError } from '../resilience/errors.js';
import type { AmqpConnection } from './amqp-connection.js';
import { MAIL_EXCHANGE, MAIL_ROUTING_KEY } from './amqp-topology.js';
import { encodeMails, MAX_MAILS_PER_MESSAGE } from './mail-message.js';
import { registerOutboxGauges } from './outbox-gauges.js';
import type { OutboxStore } from './outbox-store.js';
import { rememberNewest } from './remember-newest.js';

/** a relay failure that repeats: logged at once, then once a minute with how many it stands for */
const FAILURE_LOG_EVERY_MS = 60_000;
/** distinct failures limited each on its own per shard; any further kind shares one limiter */
const MAX_FAILURE_KINDS = 20;
/** outbox ids remembered as published while their claim did not commit; the oldest forgotten beyond */
export const PUBLISHED_UNMARKED_MAX = 20_000;
/** how long such an id is remembered after its last failed claim (well under the sweep's grace) */
export const PUBLISHED_UNMARKED_TTL_MS = 60_000;

export class OutboxRelay {
  private stopped = false;
  private readonly loops = new Map<string, Promise<void>>();
  /** outbox id → when (performance.now()) the broker confirmed its publish and its claim failed */
  private readonly publishedUnmarked = new Map<string, number>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private readonly published;
  private readonly failed;

  constructor(
    private readonly opts: {
      store: OutboxStore;
      amqp: AmqpConnection;
      logger: Logger;
      metrics: Metrics;
      batchSize?: number;
      idleMs?: number;
      /** rows per published message (a batch message when more than one; default 8, 1 to MAX_MAILS_PER_MESSAGE) */
      mailsPerMessage?: number;
    },
  ) {
    this.published = opts.metrics.counter({
      name: 'mail_publish_success_total',
      help: 'outbox rows published and confirmed by the broker',
      labelNames: ['target'],
    });
    this.failed = opts.metrics.counter({
      name: 'mail_publish_failed_total',
      help: 'outbox publish batches that failed (rows stay pending)',
      labelNames: ['target'],
    });
    registerOutboxGauges({ metrics: opts.metrics, store: opts.store });
  }

  start(): void {
    const ensure = () => {
      for (const id of this.opts.store.shardIds()) {
        if (!this.loops.has(id))
          this.loops.set(
            id,
            this.loop(id).finally(() => this.loops.delete(id)),
          );
      }
    };
    ensure();
    this.timer = setInterval(ensure, 1000);
  }

  private async loop(shardId: string): Promise<void> {
    const idle = this.opts.idleMs ?? 100;
    const batch = this.opts.batchSize ?? 100;
    // the last poll claimed nothing: probe before opening a transaction
    let probe = true;
    // a failure retried every second (a shard without the outbox table) is one line a minute,
    // each distinct error its own: a second kind of failure is logged at once, not folded in.
    // Past MAX_FAILURE_KINDS kinds (errors whose text varies, e.g. with a number in it) the
    // further ones share one limiter, so the lines stay bounded (at most 21 a minute) and every
    // repeat is still counted for the line that ends the failures.
    const limiters = new Map<string, WarnLimiter>();
    const newLimiter = () => new WarnLimiter(this.opts.logger, FAILURE_LOG_EVERY_MS, undefined, 'error');
    const overflow = newLimiter();
    const logFailure = (error: unknown) => {
      const text = String(error);
      let limiter = limiters.get(text);
      if (!limiter && limiters.size < MAX_FAILURE_KINDS) {
        limiter = newLimiter();
        limiters.set(text, limiter);
      }
      if (limiter) limiter.warn({ err: text, shard: shardId }, 'relay failed');
      else overflow.warn({ err: text, shard: shardId, moreKinds: true }, 'relay failed');
    };
    /** a success ends the failures: how many went unlogged is said once */
    const failuresEnded = () => {
      let unlogged = overflow.reset();
      for (const limiter of limiters.values()) unlogged += limiter.reset();
      limiters.clear();
      if (unlogged > 0) this.opts.logger.info({ shard: shardId, unlogged }, 'relay failures ended');
    };
    while (!this.stopped && this.opts.store.shardIds().includes(shardId)) {
      let wait = idle;
      const blocked = this.opts.amqp.blockedForMs();
      if (blocked > 0) {
        // RabbitMQ's breaker is open, or the broker blocks publishing (a resource alarm): claim
        // nothing (no locks held for a publish that cannot happen)
        await new Promise((r) => setTimeout(r, Math.min(blocked, 1000)));
        continue;
      }
      try {
        if (!probe || (await this.opts.store.hasDue(shardId))) {
          const n = await this.claimOnce(shardId, batch);
          probe = n === 0;
          if (n > 0) this.published.inc({ target: 'rabbitmq' }, n);
          if (n >= batch) wait = 0;
        }
        if (limiters.size > 0) failuresEnded();
      } catch (error) {
        this.failed.inc({ target: 'rabbitmq' });
        wait = error instanceof BreakerOpenError ? Math.max(idle, error.retryAfterSeconds * 1000) : idle * 10;
        // a shard that answered without the outbox table (never migrated) is said, as a bug is
        if (!(error instanceof DependencyError) || error.answered) logFailure(error);
      }
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    }
  }

  /** one claim: rows published before by a claim that did not commit are marked, not published */
  private async claimOnce(shardId: string, batch: number): Promise<number> {
    let confirmed: string[] = [];
    try {
      const n = await this.opts.store.claim(shardId, batch, async (rows) => {
        const since = performance.now() - PUBLISHED_UNMARKED_TTL_MS;
        const fresh = rows.filter(
          (r) => (this.publishedUnmarked.get(r.id) ?? Number.NEGATIVE_INFINITY) < since,
        );
        if (fresh.length > 0) await this.publish(shardId, fresh);
        confirmed = rows.map((r) => r.id);
      });
      for (const id of confirmed) this.publishedUnmarked.delete(id);
      return n;
    } catch (error) {
      // confirmed by the broker, then the UPDATE or the COMMIT failed (or its answer was lost)
      const now = performance.now();
      for (const id of confirmed) rememberNewest(this.publishedUnmarked, id, now, PUBLISHED_UNMARKED_MAX);
      throw error;
    }
  }

  private async publish(
    shardId: string,
    rows: Parameters<Parameters<OutboxStore['claim']>[2]>[0],
  ): Promise<void> {
    const per = Math.min(MAX_MAILS_PER_MESSAGE, Math.max(1, Math.floor(this.opts.mailsPerMessage ?? 8)));
    await this.opts.amqp.run(async (ch) => {
      // mandatory: a message no queue takes (the work queue deleted by hand) comes back as a
      // `return` before its confirm, instead of being confirmed and dropped — its rows would be
      // marked sent and their mails lost. Then the claim rolls back (the rows are claimed again)
      // and the connection is dropped, so the next one declares the topology again
      const ids = new Set<string>();
      let returned = 0;
      const onReturn = (msg: { properties: { messageId?: string } }) => {
        if (ids.has(msg.properties.messageId ?? '')) returned++;
      };
      ch.on('return', onReturn);
      try {
        await this.publishOn(ch, shardId, rows, per, ids);
      } finally {
        ch.off('return', onReturn);
      }
      if (returned > 0)
        throw new Error(`${returned} message(s) unroutable: no queue bound to ${MAIL_EXCHANGE}`);
    });
  }

  /** publishes `rows`, `per` mails a message, and waits for the broker's confirms */
  private async publishOn(
    ch: ConfirmChannel,
    shardId: string,
    rows: Parameters<Parameters<OutboxStore['claim']>[2]>[0],
    per: number,
    ids: Set<string>,
  ): Promise<void> {
    for (let i = 0; i < rows.length; i += per) {
      const chunk = rows.slice(i, i + per);
      ch.publish(
        MAIL_EXCHANGE,
        MAIL_ROUTING_KEY,
        encodeMails(
          chunk.map((row) => ({
            outboxId: row.id,
            shardId,
            tenantId: row.tenantId,
            kind: row.kind,
            recipient: row.recipient,
            payload: row.payload,
          })),
        ),
        {
          persistent: true,
          mandatory: true,
          messageId: messageIdOf(chunk, ids),
          contentType: 'application/json',
          headers: { 'x-attempts': 0 },
        },
      );
    }
    await ch.waitForConfirms();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await Promise.all(this.loops.values());
  }
}

/** a single mail's id is its outbox id; a batch is named by its first row and size (added to `ids`) */
function messageIdOf(chunk: { id: string }[], ids: Set<string>): string {
  const id = chunk.length === 1 ? chunk[0]!.id : `${chunk[0]!.id}+${chunk.length}`;
  ids.add(id);
  return id;
}
