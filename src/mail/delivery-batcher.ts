/**
 * Batched delivery of `shardgate.mail.work` messages: the messages that arrive together (in the
 * same turn of the event loop, up to `maxBatch` per shard — at most the consumer's prefetch and
 * the sender's SMTP sessions) are delivered per shard in ONE transaction on the shard master
 * (copies of outbox ids an earlier batch still holds in a second one, once that one committed)
 * (OutboxStore.deliverBatch), their mails held by the SMTP server without their final dot until
 * the transaction is ready to commit (smtp-sender.ts). A batch is flushed on the next
 * `setImmediate`, or at once when it reaches `maxBatch`; batches do not wait for each other.
 *
 * What happens to each message of a batch:
 * - mail accepted by SMTP and `delivered_at` committed → ack (delivered);
 * - outbox row already has `delivered_at` → ack without a mail (duplicate);
 * - another copy of the same outbox id in the same batch → follows the first copy: ack as a
 *   duplicate when that one was delivered or a duplicate, else rerouted with it;
 * - outbox row locked by another transaction: the store waits for it up to the 1 s lock wait
 *   (the relay holds its rows until just after the broker confirmed, so this is routine). Still
 *   held after that (another worker delivering a copy right now) → not sent; rerouted like a
 *   failure to the retry tier, where it finds `delivered_at` and is acked as a duplicate (or is
 *   sent then, if that other delivery failed). Not nack-requeued: that would come straight back
 *   while the lock is still held;
 * - no outbox row, and the id older than the outbox retention → the row was purged after its
 *   delivery (OutboxStore.purgeDelivered): ack as a duplicate, no mail;
 * - no outbox row at all otherwise (a master replaced by a replica that lacked the row) → the
 *   mail is sent without a record (nothing to record it in), as the single-message consumer did;
 * - SMTP refused or timed out (this mail only), before or after its final dot → rerouted, its
 *   mark cleared again by the store; the others of the batch still commit;
 * - undecodable or unrenderable (poison) → rerouted at once, never reaches the database;
 * - the transaction failed before the final dots (shard down, breaker open) → the held mails
 *   are dropped without their dot, every message of the batch is rerouted, nothing recorded;
 * - the worker dies before the final dots → the server discards the held mails, the database
 *   rolls the marks back, the broker redelivers: sent once, later. After the COMMIT → the mails
 *   and the marks are both there: acked as duplicates on redelivery. The window left is between
 *   the final dots and the COMMIT (one turn of the event loop);
 * - the COMMIT failed after the final dots (a master out of disk, a lost connection) → the mails
 *   the SMTP server accepted are remembered as sent: in this process (`sentUnrecorded`, up to
 *   SENT_UNRECORDED_MAX ids) and in their reroute's `x-mail-sent-at` header, so the retry, on any
 *   worker, only records them (`sentBefore` of OutboxStore.deliverBatch), acked as duplicates;
 *   an outage retry, not an attempt. With one worker process the mail arrives once. With
 *   several, each other process may send it once while its record keeps failing (its relay
 *   claims the row again and publishes a copy without the header), and once more when the
 *   original is redelivered without the header (the reroute not confirmed, an ack lost with its
 *   channel) to another process or after a restart (docs/resilience.md). Any copy of such a
 *   mail (a relay's second publish) that this process takes is recorded, not sent, too: a copy
 *   of an outbox id that an earlier batch of the process holds waits until that batch settled
 *   with the store (`delivering`), then knows the mail was sent (before, it took the row lock
 *   the failed COMMIT let go and sent the mail again, a review); the other mails of its batch go
 *   at once. A mail refused in such a batch keeps its own reason (RCPT or after its dot: a 5xx
 *   is an attempt). Counted as delivered when the server accepted it, as a duplicate when its
 *   record is made.
 *
 * Reroute: re-publish to a retry tier (per-queue TTL, dead-lettered back to the work queue), or to
 * the dead-letter queue once the mail has used up `maxAttempts`; the originals are acked only
 * after the broker confirmed those publishes. They are published on `rerouteChannel` (another
 * connection: a broker in a resource alarm holds them there, to confirm once it ends, while the
 * consuming connection goes on acking), else on the message's own channel. When every channel
 * is gone the originals stay unacked and the broker redelivers them. When the broker nacks a
 * reroute, or only the retries channel is gone, the originals are nacked with requeue (left
 * unacked they would hold prefetch slots until the channel closed, while `mail_in_flight` no
 * longer counts them): they come back on the work queue at once, their headers unchanged (the
 * attempt is not counted), and a reroute the broker did confirm before the nack leaves a second
 * copy, acked as a duplicate by its record. A broker that nacks every reroute (a retry queue
 * refusing publishes) keeps these mails cycling through the work queue without delay until it
 * takes them. Only a failure of the mail itself (`countsAsAttempt`: the SMTP
 * server refused it for good, 5xx, or it is poison) uses an attempt (`x-attempts`). An outage —
 * SMTP unreachable, frozen, dropping the connection or answering 4xx "later", the shard
 * unreachable, the row held by another delivery — says nothing about the mail: it is counted
 * apart (`x-outage-retries`) and retried
 * with the same growing delay, up to the longest tier (64 s), for as long as the outage lasts
 * (up to MAX_OUTAGE_RETRIES, about a day), so a mail queued during an outage is not given up.
 *
 * Dead-lettering marks the outbox rows first (`dead_lettered_at`, OutboxStore.markDeadLettered),
 * so that the lost-mail sweep (lost-mail-sweep.ts), which re-publishes rows published long ago
 * and never delivered, leaves alone a mail whose copy waits for an operator in the dead-letter
 * queue. Only once the mark is written is the mail published there. A mark that cannot be written
 * (the master down, its breaker open) turns the dead-lettering into an outage retry: the mail
 * goes to the longest tier with its attempts unchanged, and is dead-lettered at a later failure
 * once the master answers; it is never dead-lettered unmarked (an unmarked dead letter would be
 * re-published by the sweep, and dead-lettered again, for ever). A mark written for a mail whose
 * dead-letter publish then fails (nacked, returned, channel gone: the original goes back to the
 * work queue) is cleared again, best effort (OutboxStore.clearDeadLettered).
 * A poison message has no outbox row to mark (nothing could re-publish it) and is dead-lettered
 * as before; a batch message reaches the batcher split into single mails, each marked on its own.
 *
 * Metrics, per message: delivered, duplicates, failed (every rerouted message, counted when it
 * is rerouted), then retried or dead (once the broker confirmed).
 */
import type { ConsumeMessage, Options } from 'amqplib';
import { serverShortageOf } from '../db/mysql-errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { DependencyError } from '../resilience/errors.js';
import { DEAD_EXCHANGE, RETRY_EXCHANGE } from './amqp-topology.js';
import { decodeMailMessage, type MailMessage } from './mail-message.js';
import { InvalidMailError, type RenderedMail, renderMail } from './mail-templates.js';
import { DeliveryUnrecordedError, type OutboxStore } from './outbox-store.js';
import { rememberNewest } from './remember-newest.js';
import { retryDelayMs, retryRoutingKey } from './retry-tiers.js';
import type { HeldMail, MailSender } from './smtp-sender.js';

/** the part of an amqplib ConfirmChannel a reroute is published on */
export interface RerouteChannel {
  publish(exchange: string, routingKey: string, content: Buffer, options?: Options.Publish): boolean;
  waitForConfirms(): Promise<void>;
  /** a `mandatory` publish no queue took comes back as `return`, before its confirm (amqplib) */
  on(event: 'return', listener: (message: ConsumeMessage) => void): unknown;
  off(event: 'return', listener: (message: ConsumeMessage) => void): unknown;
  /** ends the channel: the connection is dropped, and the next one declares the topology again */
  close(): Promise<void>;
}

/** the part of an amqplib ConfirmChannel the batcher uses (acks go to a message's own channel) */
export interface MailChannel extends RerouteChannel {
  ack(message: ConsumeMessage): void;
  /** throws on a channel that is gone, as `ack` does (amqplib: IllegalOperationError) */
  nack(message: ConsumeMessage, allUpTo?: boolean, requeue?: boolean): void;
  /**
   * false once the channel closed (absent: taken as open). Its messages are then not rerouted
   * on `rerouteChannel`: the broker redelivers them, and a retry copy would be one more
   */
  isOpen?(): boolean;
}
export type BatchStore = Pick<OutboxStore, 'deliverBatch' | 'markDeadLettered' | 'clearDeadLettered'>;

export interface DeliveryBatcherOptions {
  store: BatchStore;
  sender: MailSender;
  logger: Logger;
  metrics: Metrics;
  maxAttempts: number;
  /** a shard's batch is delivered at once when it holds this many messages (at most the
   *  sender's `maxSessions`: every mail of a batch holds a session until the batch commits) */
  maxBatch?: number;
  /**
   * Where reroutes are published: a channel on another connection than the consuming one (the
   * email worker's `retries` connection). A broker in a resource alarm stops reading a
   * connection once it publishes, its acks included; a retry published on the consuming
   * connection would stop every ack (and so, after the prefetch, all consumption) until the
   * alarm ends. Rejects when no channel can be had: the reroute is then published on the
   * message's own channel. Absent: always on the message's own channel.
   */
  rerouteChannel?: () => Promise<RerouteChannel>;
}

/** the outbox row is held by another transaction: the message is retried later */
export class OutboxRowLockedError extends Error {
  constructor(outboxId: string) {
    super(`outbox row ${outboxId} is locked by another delivery`);
    this.name = 'OutboxRowLockedError';
  }
}

/** outage retries of one mail before it is dead-lettered anyway: about a day at the 64 s tier */
export const MAX_OUTAGE_RETRIES = 1400;

/** header of a rerouted mail the SMTP server accepted while its record failed: when (ISO 8601) */
export const SENT_AT_HEADER = 'x-mail-sent-at';

/**
 * outbox ids a process remembers as sent but not recorded; the oldest is forgotten beyond (its
 * retry's header still says it). ~100 bytes each: a few MB at most
 */
export const SENT_UNRECORDED_MAX = 20_000;

/**
 * The mail was accepted by the SMTP server, and only its record (`delivered_at`) failed: the
 * retry records it without sending. Not an attempt: nothing is wrong with the mail.
 */
export class MailSentUnrecordedError extends Error {
  constructor(cause: unknown) {
    super(`sent; its delivery could not be recorded yet: ${reasonOf(cause)}`, { cause });
    this.name = 'MailSentUnrecordedError';
  }
}

/**
 * Whether a failure uses one of the mail's attempts. No: an outage of a dependency (a
 * DependencyError without an SMTP reply code — refused, timed out, no greeting, connection
 * closed; the shard or its breaker), a transient SMTP reply (4xx: "try again later", greylisting,
 * a full mailbox or queue; RFC 5321 §4.2.1 says to retry those, for days) and a row held by
 * another delivery. Yes: a permanent refusal of this mail by the SMTP server (5xx), a mail the
 * SMTP client itself refuses to send (nodemailer's own envelope or message checks, `command`
 * `API`: a recipient with CR, LF or angle brackets, an empty message; no server would take it
 * either, so retrying it as an outage would go on for a day), a poison message, any other error.
 */
export function countsAsAttempt(error: unknown): boolean {
  if (error instanceof OutboxRowLockedError || error instanceof MailSentUnrecordedError) return false;
  // a master out of disk space or memory (db/mysql-errors.ts; the worker's pools pass these on
  // as they are): an outage of the master, not of the mail. Counted, five of them in a row
  // dead-lettered mails the master could not record before their dots, unsent
  if (serverShortageOf(error) !== undefined) return false;
  if (error instanceof DependencyError) {
    const cause = error.cause as { responseCode?: unknown; code?: unknown; command?: unknown } | undefined;
    if (cause?.command === 'API' && (cause.code === 'EENVELOPE' || cause.code === 'EMESSAGE')) return true;
    const code = cause?.responseCode;
    return typeof code === 'number' && code >= 500;
  }
  return true;
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

interface Delivery {
  ch: MailChannel;
  msg: ConsumeMessage;
  message: MailMessage;
  mail: RenderedMail;
}

interface Failure {
  ch: MailChannel;
  msg: ConsumeMessage;
  error: unknown;
  /** accepted by the SMTP server at this time (ISO 8601), not recorded: said in the reroute's header */
  sentAt?: string;
}

/** where a failure is rerouted (DeliveryBatcher.plan) */
interface Plan {
  f: Failure;
  attempts: number;
  outageRetries: number;
  dead: boolean;
  reason: string;
  /** the mail whose outbox row was marked dead-lettered for this reroute */
  marked?: MailMessage;
}

export class DeliveryBatcher {
  private readonly pending = new Map<string, Delivery[]>();
  private flushScheduled = false;
  private inflight = 0;
  /** messages ever taken (`add`): the lost-mail sweep sees a message that passed through meanwhile */
  private takenCount = 0;
  private readonly idleWaiters = new Set<() => void>();
  /** outbox id → when the SMTP server accepted it (ISO 8601), for mails whose record failed */
  private readonly sentUnrecorded = new Map<string, string>();
  /**
   * outbox id → resolves once the last batch holding it has settled with the store (its mails
   * recorded, or remembered as sent), or ended; never rejects
   */
  private readonly delivering = new Map<string, Promise<void>>();
  private readonly maxBatch: number;
  private readonly c;

  constructor(private readonly opts: DeliveryBatcherOptions) {
    this.maxBatch = Math.max(1, Math.min(opts.maxBatch ?? 16, opts.sender.maxSessions));
    const counter = (name: string, help: string) =>
      opts.metrics.counter({ name, help, labelNames: ['target'] });
    this.c = {
      delivered: counter('mail_delivery_success_total', 'emails accepted by the SMTP server'),
      failed: counter('mail_delivery_failed_total', 'delivery attempts that failed'),
      retried: counter('mail_retries_total', 'messages sent to a retry tier'),
      dead: counter('mail_dead_lettered_total', 'messages moved to the dead-letter queue'),
      duplicates: counter(
        'mail_duplicates_skipped_total',
        'redelivered messages acked without a second email',
      ),
    };
    // the queues' depths (queue-gauges.ts, `mail status`) leave these out: RabbitMQ counts only
    // messages ready to hand out. During an SMTP outage a mail can sit here, owed, for its SMTP
    // timeout before it goes to a retry tier, while every queue reads 0
    opts.metrics.gauge({
      name: 'mail_in_flight',
      help: 'messages this worker took from the work queue and has not yet acked or sent to a retry tier',
      collect: (g) => g.set({}, this.inflight),
    });
    // every series at 0 from the start, so /metrics shows it and rate() sees its first event
    for (const c of [this.c.delivered, this.c.failed, this.c.duplicates]) c.inc({ target: 'smtp' }, 0);
    for (const c of [this.c.retried, this.c.dead]) c.inc({ target: 'rabbitmq' }, 0);
  }

  /** messages taken and not yet acked or rerouted */
  get inFlight(): number {
    return this.inflight;
  }

  /** messages taken since the start (grows by one per `add`) */
  get taken(): number {
    return this.takenCount;
  }

  /** Take one consumed message; it is acked or rerouted later on `ch`. */
  add(ch: MailChannel, msg: ConsumeMessage): void {
    this.inflight++;
    this.takenCount++;
    let delivery: Delivery;
    try {
      const message = decodeMailMessage(msg.content);
      if (!message) throw new InvalidMailError('not a mail message');
      delivery = { ch, msg, message, mail: renderMail(message.kind, message.payload) };
    } catch (error) {
      this.c.failed.inc({ target: 'smtp' });
      this.track(this.reroute([{ ch, msg, error }]), 1);
      return;
    }
    const shardId = delivery.message.shardId;
    const batch = this.pending.get(shardId);
    if (batch) batch.push(delivery);
    else this.pending.set(shardId, [delivery]);
    if ((batch?.length ?? 1) >= this.maxBatch) this.flushShard(shardId);
    else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
  }

  /**
   * Deliver what is collected now, then wait until every message taken so far is acked or
   * rerouted, or `timeoutMs` passed; resolves true when nothing is in flight any more.
   */
  drain(timeoutMs: number): Promise<boolean> {
    this.flush();
    if (this.inflight === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.idleWaiters.delete(done);
        resolve(true);
      };
      const timer = setTimeout(() => {
        this.idleWaiters.delete(done);
        resolve(false);
      }, timeoutMs);
      this.idleWaiters.add(done);
    });
  }

  private flush(): void {
    this.flushScheduled = false;
    for (const shardId of [...this.pending.keys()]) this.flushShard(shardId);
  }

  private flushShard(shardId: string): void {
    const batch = this.pending.get(shardId);
    this.pending.delete(shardId);
    if (batch && batch.length > 0) this.deliver(shardId, batch);
  }

  private track(work: Promise<void>, messages: number): void {
    void work
      .catch((error: unknown) => this.opts.logger.error({ err: String(error) }, 'mail batch failed'))
      .finally(() => {
        this.inflight -= messages;
        if (this.inflight === 0) for (const w of [...this.idleWaiters]) w();
      });
  }

  /**
   * Delivers the messages of `batch` whose outbox id no earlier batch of this process holds at
   * once, and the others once those batches settled with the store (their mails recorded, or
   * remembered as sent: such a batch may have sent a mail whose record then failed, which a copy
   * must know of before it locks the row). Not once they ended: their reroutes may wait for the
   * broker, and their dots' answers up to 10 minutes (a review).
   */
  private deliver(shardId: string, batch: Delivery[]): void {
    const later = batch.filter((d) => this.delivering.has(d.message.outboxId));
    const now = later.length === 0 ? batch : batch.filter((d) => !this.delivering.has(d.message.outboxId));
    const earlier = [...new Set(later.map((d) => this.delivering.get(d.message.outboxId)!))];
    // each part leaves `mail_in_flight` when it ends
    if (now.length > 0) this.track(this.deliverAfter(shardId, now, []), now.length);
    if (later.length > 0) this.track(this.deliverAfter(shardId, later, earlier), later.length);
  }

  /** `deliverNow` once `earlier` resolved (at once, in this turn, when there is none) */
  private deliverAfter(shardId: string, batch: Delivery[], earlier: Promise<void>[]): Promise<void> {
    let stored = () => {};
    const known = new Promise<void>((r) => (stored = r));
    const run =
      earlier.length === 0
        ? this.deliverNow(shardId, batch, stored)
        : Promise.all(earlier).then(() => this.deliverNow(shardId, batch, stored));
    const ended = run.then(
      () => {},
      () => {},
    );
    const gate = Promise.race([known, ended]);
    const ids = new Set(batch.map((d) => d.message.outboxId));
    for (const id of ids) this.delivering.set(id, gate);
    void ended.then(() => {
      for (const id of ids) if (this.delivering.get(id) === gate) this.delivering.delete(id);
    });
    return run;
  }

  /**
   * `stored` is called once the store has its say: at the COMMIT (a copy then finds the rows
   * marked; a mail the server refuses after its dot is unmarked and rerouted by its original),
   * or once a failed batch's sent mails are remembered
   */
  private async deliverNow(shardId: string, batch: Delivery[], stored: () => void): Promise<void> {
    const byId = new Map<string, Delivery[]>();
    for (const d of batch) {
      const copies = byId.get(d.message.outboxId);
      if (copies) copies.push(d);
      else byId.set(d.message.outboxId, [d]);
    }
    const holdErrors = new Map<string, unknown>();
    // sent at an earlier try whose record failed: recorded now, not sent again
    const sentBefore = new Map<string, string>();
    for (const [id, copies] of byId) {
      const at =
        this.sentUnrecorded.get(id) ?? copies.map((d) => sentAtOf(d.msg)).find((a) => a !== undefined);
      if (at !== undefined) sentBefore.set(id, at);
    }
    let result: Awaited<ReturnType<BatchStore['deliverBatch']>>;
    try {
      result = await this.opts.store.deliverBatch(
        shardId,
        [...byId.keys()],
        async (ids) => {
          const mails = ids.map((id) => {
            const d = byId.get(id)?.[0];
            if (!d) throw new Error(`outbox id ${id} is not in the batch`);
            return { to: d.message.recipient, outboxId: id, mail: d.mail };
          });
          const outcomes = await this.opts.sender.hold(mails);
          const held = new Map<string, HeldMail>();
          outcomes.forEach((o, i) => {
            if (o instanceof Error) holdErrors.set(ids[i]!, o);
            else held.set(ids[i]!, o);
          });
          return held;
        },
        new Set(sentBefore.keys()),
        stored,
      );
    } catch (error) {
      const refused = error instanceof DeliveryUnrecordedError ? error.refused : new Map<string, unknown>();
      if (error instanceof DeliveryUnrecordedError) {
        const at = new Date().toISOString();
        for (const id of error.sent) if (!sentBefore.has(id)) sentBefore.set(id, at);
        // accepted by the server: delivered, whatever becomes of the record
        this.c.delivered.inc({ target: 'smtp' }, error.sent.length);
      }
      for (const [id, at] of sentBefore) this.rememberSent(id, at);
      stored();
      const cause = error instanceof DeliveryUnrecordedError ? error.cause : error;
      this.c.failed.inc({ target: 'smtp' }, batch.length);
      this.opts.logger.warn(
        { shard: shardId, messages: batch.length, sentUnrecorded: sentBefore.size, err: reasonOf(cause) },
        sentBefore.size > 0
          ? 'mail batch not recorded; rerouting all of it, the mails sent recorded at their retry'
          : 'mail batch not delivered; rerouting all of it',
      );
      await this.reroute(
        batch.map((d) => {
          const sentAt = sentBefore.get(d.message.outboxId);
          // a mail the server refused after its dot keeps its own reason (a 5xx is an attempt)
          return sentAt === undefined
            ? {
                ch: d.ch,
                msg: d.msg,
                error: refused.get(d.message.outboxId) ?? holdErrors.get(d.message.outboxId) ?? cause,
              }
            : { ch: d.ch, msg: d.msg, error: new MailSentUnrecordedError(cause), sentAt };
        }),
      );
      return;
    }

    const sent = new Set(result.sent);
    const duplicate = new Set([...result.duplicate, ...result.recorded]);
    for (const id of [...sent, ...duplicate]) this.sentUnrecorded.delete(id);
    stored();
    const locked = new Set(result.locked);
    const failures: Failure[] = [];
    for (const [id, [first, ...copies]] of byId) {
      if (!first) continue;
      if (sent.has(id) || duplicate.has(id)) {
        if (sent.has(id)) this.c.delivered.inc({ target: 'smtp' });
        else this.c.duplicates.inc({ target: 'smtp' });
        this.ack(first);
        for (const copy of copies) {
          this.c.duplicates.inc({ target: 'smtp' });
          this.ack(copy);
        }
        continue;
      }
      const error = locked.has(id)
        ? new OutboxRowLockedError(id)
        : (result.refused.get(id) ?? holdErrors.get(id) ?? new Error(`outbox id ${id} was not delivered`));
      const sentAt = sentBefore.get(id);
      for (const d of [first, ...copies]) {
        this.c.failed.inc({ target: 'smtp' });
        failures.push({ ch: d.ch, msg: d.msg, error, ...(sentAt === undefined ? {} : { sentAt }) });
      }
    }
    if (failures.length > 0) {
      this.opts.logger.warn(
        {
          shard: shardId,
          messages: batch.length,
          rerouted: failures.length,
          err: reasonOf(failures[0]?.error),
        },
        'mails of a batch not delivered; rerouting them',
      );
    }
    await this.reroute(failures);
  }

  /** remembers a mail as sent and not recorded, the oldest forgotten beyond SENT_UNRECORDED_MAX */
  private rememberSent(outboxId: string, at: string): void {
    rememberNewest(this.sentUnrecorded, outboxId, at, SENT_UNRECORDED_MAX);
  }

  /** an ack on a channel that is gone is lost; the broker redelivers and the record dedups it */
  private ack({ ch, msg }: { ch: MailChannel; msg: ConsumeMessage }): void {
    try {
      ch.ack(msg);
    } catch (error) {
      this.opts.logger.debug({ err: (error as Error).message }, 'ack failed; the broker will redeliver');
    }
  }

  /** back to the work queue (false: the channel is gone, and its close requeues the message) */
  private requeue({ ch, msg }: Failure): boolean {
    try {
      ch.nack(msg, false, true);
      return true;
    } catch {
      return false;
    }
  }

  /** never rejects: what cannot be rerouted is requeued, or redelivered once its channel closed */
  private async reroute(failures: Failure[]): Promise<void> {
    const byChannel = new Map<MailChannel, Failure[]>();
    for (const f of failures) {
      const list = byChannel.get(f.ch);
      if (list) list.push(f);
      else byChannel.set(f.ch, [f]);
    }
    await Promise.all([...byChannel].map(([ch, list]) => this.rerouteOn(ch, list)));
  }

  /** the channel to publish reroutes of `own`'s messages on (see `rerouteChannel`) */
  private async publishChannel(own: MailChannel): Promise<RerouteChannel> {
    if (!this.opts.rerouteChannel) return own;
    try {
      return await this.opts.rerouteChannel();
    } catch (error) {
      // under a resource alarm this blocks the consuming connection until it ends
      this.opts.logger.warn(
        { err: reasonOf(error) },
        "no channel for reroutes on their own connection; rerouting on the message's own",
      );
      return own;
    }
  }

  private async rerouteOn(own: MailChannel, failures: Failure[]): Promise<void> {
    // The broker redelivers the messages of a channel that is gone: a retry copy would be one
    // more (acked as a duplicate if delivered, but a second entry in a tier or the dead-letter
    // queue). Looked at before and after getting the publishing channel (a connect may take 2 s);
    // a channel that goes while its retries wait for their confirms still leaves a copy.
    const gone = () => own.isOpen?.() === false;
    const ch = gone() ? undefined : await this.publishChannel(own);
    if (!ch || gone()) {
      this.opts.logger.debug(
        { messages: failures.length },
        'channel gone before the reroute; left for redelivery',
      );
      return;
    }
    const plans = await this.plan(failures);
    const routed: { f: Failure; dead: boolean; attempts: number; reason: string }[] = [];
    // mandatory: a tier or the dead-letter queue deleted by hand takes nothing, and the broker
    // would confirm the publish and drop it (the original acked, the mail lost). A return seen
    // while this reroute waits for its confirms (another reroute's on the channel too: then both
    // go back, and a copy confirmed into a tier is acked later as a duplicate) fails the reroute
    let returned = 0;
    const onReturn = () => {
      returned++;
    };
    ch.on('return', onReturn);
    try {
      for (const { f, attempts, outageRetries, dead, reason } of plans) {
        const { msg } = f;
        const props = {
          persistent: true,
          mandatory: true,
          messageId: msg.properties.messageId,
          contentType: msg.properties.contentType,
          headers: {
            ...msg.properties.headers,
            'x-attempts': attempts,
            'x-outage-retries': outageRetries,
            'x-last-error': reason.slice(0, 300),
            ...(f.sentAt === undefined ? {} : { [SENT_AT_HEADER]: f.sentAt }),
          },
        };
        const delay = retryDelayMs(attempts + outageRetries);
        if (dead) ch.publish(DEAD_EXCHANGE, '', msg.content, props);
        else ch.publish(RETRY_EXCHANGE, retryRoutingKey(delay), msg.content, props);
        routed.push({ f, dead, attempts, reason });
      }
      await ch.waitForConfirms();
      if (returned > 0) {
        // back to the work queue, and a new connection that declares the queues again (else
        // the requeued mails would fail and come back at once, over and over)
        for (const f of failures) this.requeue(f);
        await this.unmark(plans);
        ch.close().catch(() => {});
        this.opts.logger.warn(
          { returned, messages: failures.length },
          'a retry or dead-letter queue took no rerouted mail (deleted?); requeued, reconnecting',
        );
        return;
      }
    } catch (e) {
      // a nack of the publishes (channel open) or the channel gone: either way the originals go
      // back to the broker, by a nack with requeue or, when the channel is gone, by its close
      let requeued = 0;
      for (const f of failures) if (this.requeue(f)) requeued++;
      await this.unmark(plans);
      this.opts.logger.warn(
        { err: (e as Error).message, messages: failures.length, requeued },
        'could not reroute failed mails; they will be redelivered',
      );
      return;
    } finally {
      ch.off('return', onReturn);
    }
    for (const { f, dead, attempts, reason } of routed) {
      if (dead) {
        this.c.dead.inc({ target: 'rabbitmq' });
        this.opts.logger.warn(
          { messageId: f.msg.properties.messageId, attempts, reason },
          'mail dead-lettered',
        );
      } else {
        this.c.retried.inc({ target: 'rabbitmq' });
      }
      this.ack(f);
    }
  }

  /**
   * Where each failure goes, with its counts: a retry tier, or the dead-letter queue once its
   * attempts or outage retries are used up. The outbox rows of those bound for the dead-letter
   * queue are marked first, per shard; where the mark fails they go as an outage retry instead
   * (attempts unchanged, outage retries kept below MAX_OUTAGE_RETRIES), never unmarked.
   */
  private async plan(failures: Failure[]): Promise<Plan[]> {
    const plans = failures.map((f): Plan => {
      const counted = countsAsAttempt(f.error);
      const attempts = this.attemptsSoFar(f.msg) + (counted ? 1 : 0);
      const outageRetries = this.outageRetriesSoFar(f.msg) + (counted ? 0 : 1);
      const dead = attempts >= this.opts.maxAttempts || outageRetries >= MAX_OUTAGE_RETRIES;
      return { f, attempts, outageRetries, dead, reason: reasonOf(f.error) };
    });
    const byShard = new Map<string, Plan[]>();
    for (const p of plans) {
      if (!p.dead) continue;
      const mail = decodeMailMessage(p.f.msg.content);
      // poison: no outbox row to mark
      if (!mail) continue;
      p.marked = mail;
      const list = byShard.get(mail.shardId);
      if (list) list.push(p);
      else byShard.set(mail.shardId, [p]);
    }
    await Promise.all(
      [...byShard].map(async ([shardId, list]) => {
        try {
          await this.opts.store.markDeadLettered(
            shardId,
            list.map((p) => p.marked!.outboxId),
          );
        } catch (error) {
          this.opts.logger.warn(
            { shard: shardId, mails: list.length, err: reasonOf(error) },
            'could not mark mails dead-lettered on the shard master; retrying them as an outage instead',
          );
          for (const p of list) {
            p.marked = undefined;
            p.dead = false;
            // the master is out, not the mail: its delay grows as an outage's does, and its
            // next failure once the master answers dead-letters it (marked) after all
            p.attempts = Math.min(this.attemptsSoFar(p.f.msg), this.opts.maxAttempts - 1);
            p.outageRetries = Math.min(this.outageRetriesSoFar(p.f.msg) + 1, MAX_OUTAGE_RETRIES - 1);
            p.reason = `${p.reason} (not dead-lettered: ${reasonOf(error)})`;
          }
        }
      }),
    );
    return plans;
  }

  /** the dead-letter publish of these plans failed: their marks go (best effort, logged) */
  private async unmark(plans: Plan[]): Promise<void> {
    const byShard = new Map<string, string[]>();
    for (const p of plans) {
      if (!p.marked) continue;
      const list = byShard.get(p.marked.shardId);
      if (list) list.push(p.marked.outboxId);
      else byShard.set(p.marked.shardId, [p.marked.outboxId]);
    }
    await Promise.all([...byShard].map(([shardId, ids]) => this.opts.store.clearDeadLettered(shardId, ids)));
  }

  /**
   * attempts used before this delivery (`x-attempts`). A header that is not a count cannot be
   * trusted to ever reach `maxAttempts`: such a message goes to the dead-letter queue.
   */
  private attemptsSoFar(msg: ConsumeMessage): number {
    return countHeader(msg, 'x-attempts') ?? this.opts.maxAttempts;
  }

  /** outage retries before this delivery (`x-outage-retries`), likewise */
  private outageRetriesSoFar(msg: ConsumeMessage): number {
    return countHeader(msg, 'x-outage-retries') ?? MAX_OUTAGE_RETRIES;
  }
}

/** when the SMTP server accepted this mail at an earlier try whose record failed (SENT_AT_HEADER) */
function sentAtOf(msg: ConsumeMessage): string | undefined {
  const at = msg.properties.headers?.[SENT_AT_HEADER];
  return typeof at === 'string' && at.length > 0 && at.length <= 40 ? at : undefined;
}

/** a header holding a count (absent = 0); undefined when it holds anything else */
function countHeader(msg: ConsumeMessage, name: string): number | undefined {
  const n = Number(msg.properties.headers?.[name] ?? 0);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
