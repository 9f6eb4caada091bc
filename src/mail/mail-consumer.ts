/**
 * Consumer of `shardgate.mail.work`: subscribes on every (re)connected consumer channel and hands
 * each mail to the DeliveryBatcher (a batch message of the relay as one part per mail,
 * split-mail-message.ts), which renders, sends over SMTP, records delivery and acks
 * — in one transaction per shard per batch of messages that arrived together.
 *
 * Exactly-once as far as SMTP allows (OutboxStore.deliverBatch): the outbox rows are locked, a
 * row already marked `delivered_at` is acked without a second mail, else the mail is handed to
 * the SMTP server without its final dot, the mark is written, the dots go out and the mark is
 * committed at once, then the message is acked. The remaining window: the worker dying between
 * the dots and the COMMIT (one turn of the event loop), or that COMMIT failing → one duplicate
 * on redelivery.
 *
 * Failure (render error, SMTP down or refusing, shard unreachable, row locked by another
 * delivery): the message is re-published to a retry tier (per-queue TTL, dead-lettered back to
 * the work queue), on the `reroutes` connection, and the original is acked only after that
 * publish was confirmed. Only the
 * mail's own failures (a 5xx refusal, a poison message) use up its `maxAttempts` and end in the
 * dead-letter queue; an outage is retried for as long as it lasts (`countsAsAttempt` in
 * delivery-batcher.ts, which has every case). A poison message therefore never blocks others.
 */
import type { ConfirmChannel } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { WORK_QUEUE } from './amqp-topology.js';
import { type BatchStore, DeliveryBatcher, type MailChannel } from './delivery-batcher.js';
import type { MailSender } from './smtp-sender.js';
import { splitMailMessage } from './split-mail-message.js';

/** how long stop() waits for the broker to confirm the subscription cancelled */
const CANCEL_WITHIN_MS = 2000;

export interface MailConsumerOptions {
  amqp: AmqpConnection;
  /**
   * the connection a failed mail's retry is published on: a broker in a resource alarm then
   * blocks that one, and this consumer's `amqp` goes on acking. Absent: on `amqp`
   */
  reroutes?: AmqpConnection;
  store: BatchStore;
  smtp: MailSender;
  logger: Logger;
  metrics: Metrics;
  maxAttempts: number;
  /** largest batch per shard; the consumer channel's prefetch bounds it anyway */
  maxBatch?: number;
  /** how long `stop()` waits for in-flight deliveries */
  drainTimeoutMs?: number;
}

export class MailConsumer {
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private stopping = false;
  private subscription: { ch: ConfirmChannel; consumerTag: string } | undefined;
  private readonly batcher: DeliveryBatcher;

  constructor(private readonly opts: MailConsumerOptions) {
    this.batcher = new DeliveryBatcher({
      store: opts.store,
      sender: opts.smtp,
      logger: opts.logger,
      metrics: opts.metrics,
      maxAttempts: opts.maxAttempts,
      maxBatch: opts.maxBatch ?? 16,
      rerouteChannel: opts.reroutes && (() => opts.reroutes!.sideChannel()),
    });
    opts.amqp.onChannel((ch) => {
      if (this.stopping) return;
      const mailChannel = mailChannelOf(ch);
      ch.consume(WORK_QUEUE, (msg) => {
        if (!msg) {
          // the broker cancelled the subscription (the work queue was deleted, or its node
          // went): nothing would come any more on a channel that stays open. Closing it drops
          // the connection; the keep-alive reconnects, declares the topology again and
          // subscribes anew. Unacked messages of this channel are redelivered (duplicates of
          // delivered ones are acked by their record)
          if (this.stopping) return;
          opts.logger.warn({ queue: WORK_QUEUE }, 'consumer cancelled by the broker; reconnecting');
          ch.close().catch(() => {});
          return;
        }
        // a batch message of the relay: one delivery per mail, the original acked after all
        for (const part of splitMailMessage(mailChannel, msg)) this.batcher.add(part.ch, part.msg);
      })
        .then(({ consumerTag }) => {
          this.subscription = { ch, consumerTag };
        })
        .catch((e: Error) => opts.logger.warn({ err: e.message }, 'consume failed'));
    });
  }

  /**
   * Messages in flight now (taken, not yet acked or rerouted) and taken since the start: the
   * lost-mail sweep runs only while none is in flight and none was taken during its queue reads
   */
  deliveries(): { inFlight: number; taken: number } {
    return { inFlight: this.batcher.inFlight, taken: this.batcher.taken };
  }

  /** Keep a connection (and so a subscription) open; reconnects every second while down. */
  start(): void {
    const touch = () => void this.opts.amqp.run(async () => {}, { consumerSide: true }).catch(() => {});
    touch();
    this.keepAlive = setInterval(touch, 1000);
  }

  /**
   * Stop taking messages (cancel the subscription), then deliver what was collected and let
   * in-flight batches finish (acked or rerouted), for at most `drainTimeoutMs`. What is still
   * unacked after that is redelivered by the broker once the connection closes.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.keepAlive);
    const sub = this.subscription;
    // bounded: a broker that stopped reading this connection (a resource alarm after a reroute
    // was published on it: without `reroutes`, or when that connection could not be had) never
    // answers the cancel, and heartbeats keep it open
    if (sub)
      await Promise.race([
        sub.ch.cancel(sub.consumerTag).catch(() => {}),
        new Promise((r) => setTimeout(r, CANCEL_WITHIN_MS).unref()),
      ]);
    const drained = await this.batcher.drain(this.opts.drainTimeoutMs ?? 10_000);
    if (!drained)
      this.opts.logger.warn({ inFlight: this.batcher.inFlight }, 'stopped with mail deliveries in flight');
  }
}

/** `ch` as the batcher sees it, telling whether it is still open (amqplib does not say) */
export function mailChannelOf(ch: ConfirmChannel): MailChannel {
  let open = true;
  ch.once('close', () => {
    open = false;
  });
  return {
    ack: (msg) => ch.ack(msg),
    nack: (msg, allUpTo, requeue) => ch.nack(msg, allUpTo, requeue),
    publish: (exchange, routingKey, content, options) => ch.publish(exchange, routingKey, content, options),
    waitForConfirms: () => ch.waitForConfirms(),
    on: (event, listener) => ch.on(event, listener),
    off: (event, listener) => ch.off(event, listener),
    close: () => ch.close(),
    isOpen: () => open,
  };
}
