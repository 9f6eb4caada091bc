/**
 * Consumer of `shardgate.mail.work`: render, send over SMTP, record delivery, ack.
 *
 * Exactly-once as far as SMTP allows (OutboxStore.deliverOnce): the outbox row is locked, a
 * row already marked `delivered_at` is acked without a second mail, else the mail is sent and
 * the mark committed, then the message is acked. The remaining window: the commit failing after
 * the SMTP server accepted → one duplicate on redelivery.
 *
 * Failure (render error, SMTP down, shard unreachable): the message is re-published with
 * `x-attempts + 1` to the retry tier of that attempt (per-queue TTL, dead-lettered back to the
 * work queue), or to the dead-letter queue once `maxAttempts` is reached, and the original is
 * acked only after that publish was confirmed. A poison message therefore never blocks others.
 */
import type { ConfirmChannel, ConsumeMessage } from 'amqplib';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { AmqpConnection } from './amqp-connection.js';
import { DEAD_EXCHANGE, RETRY_EXCHANGE, WORK_QUEUE } from './amqp-topology.js';
import { decodeMailMessage } from './mail-message.js';
import { InvalidMailError, renderMail } from './mail-templates.js';
import type { OutboxStore } from './outbox-store.js';
import { retryDelayMs, retryQueueName } from './retry-tiers.js';
import type { SmtpSender } from './smtp-sender.js';

export class MailConsumer {
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private inflight = 0;
  private stopping = false;
  private subscription: { ch: ConfirmChannel; consumerTag: string } | undefined;
  private readonly c;

  constructor(
    private readonly opts: {
      amqp: AmqpConnection;
      store: OutboxStore;
      smtp: SmtpSender;
      logger: Logger;
      metrics: Metrics;
      maxAttempts: number;
    },
  ) {
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
    opts.amqp.onChannel((ch) => {
      if (this.stopping) return;
      ch.consume(WORK_QUEUE, (msg) => {
        if (msg) void this.handle(ch, msg);
      })
        .then(({ consumerTag }) => {
          this.subscription = { ch, consumerTag };
        })
        .catch((e: Error) => opts.logger.warn({ err: e.message }, 'consume failed'));
    });
  }

  /** Keep a connection (and so a subscription) open; reconnects every second while down. */
  start(): void {
    const touch = () => void this.opts.amqp.run(async () => {}).catch(() => {});
    touch();
    this.keepAlive = setInterval(touch, 1000);
  }

  private async handle(ch: ConfirmChannel, msg: ConsumeMessage): Promise<void> {
    this.inflight++;
    const m = decodeMailMessage(msg.content);
    const attempts = Number(msg.properties.headers?.['x-attempts'] ?? 0);
    try {
      if (!m) throw new InvalidMailError('not a mail message');
      const mail = renderMail(m.kind, m.payload);
      const outcome = await this.opts.store.deliverOnce(m.shardId, m.outboxId, () =>
        this.opts.smtp.send({ to: m.recipient, outboxId: m.outboxId, mail }),
      );
      if (outcome === 'sent') this.c.delivered.inc({ target: 'smtp' });
      else this.c.duplicates.inc({ target: 'smtp' });
      ch.ack(msg);
    } catch (error) {
      this.c.failed.inc({ target: 'smtp' });
      await this.reroute(ch, msg, attempts + 1, error);
    } finally {
      this.inflight--;
    }
  }

  private async reroute(
    ch: ConfirmChannel,
    msg: ConsumeMessage,
    attemptsMade: number,
    error: unknown,
  ): Promise<void> {
    const reason = error instanceof Error ? error.message : String(error);
    const headers = {
      ...msg.properties.headers,
      'x-attempts': attemptsMade,
      'x-last-error': reason.slice(0, 300),
    };
    const props = {
      persistent: true,
      messageId: msg.properties.messageId,
      contentType: msg.properties.contentType,
      headers,
    };
    try {
      if (attemptsMade >= this.opts.maxAttempts) {
        ch.publish(DEAD_EXCHANGE, '', msg.content, props);
        await ch.waitForConfirms();
        this.c.dead.inc({ target: 'rabbitmq' });
        this.opts.logger.warn(
          { messageId: msg.properties.messageId, attempts: attemptsMade, reason },
          'mail dead-lettered',
        );
      } else {
        ch.publish(RETRY_EXCHANGE, retryQueueName(retryDelayMs(attemptsMade)), msg.content, props);
        await ch.waitForConfirms();
        this.c.retried.inc({ target: 'rabbitmq' });
      }
      ch.ack(msg);
    } catch (e) {
      // the channel is gone: the broker redelivers the unacked original later
      this.opts.logger.warn(
        { err: (e as Error).message },
        'could not reroute a failed mail; it will be redelivered',
      );
    }
  }

  /** Stop taking messages (cancel the subscription), then let in-flight deliveries finish. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.keepAlive);
    const sub = this.subscription;
    if (sub) await sub.ch.cancel(sub.consumerTag).catch(() => {});
    const deadline = Date.now() + 10_000;
    while (this.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }
}
