/**
 * A batch message of the work queue (several outbox rows of one shard, mail-message.ts) becomes
 * one single-mail message per row for the DeliveryBatcher, each on a view of the channel whose
 * `ack` acks the original message once EVERY part was acked. Publishes (reroutes to the retry
 * tiers and the dead-letter queue) and their confirms go to the real channel, so a part that
 * fails travels on as a single-mail message with its own `x-attempts`, like any other.
 *
 * Failure modes:
 * - a part that is never acked (its reroute was not confirmed, the channel is gone) leaves the
 *   original unacked: the broker redelivers the whole batch message, and the parts delivered
 *   meanwhile are acked as duplicates by their `delivered_at` record — sent once;
 * - anything that is not a batch message (a single mail, or poison) passes through unchanged; a
 *   batch that does not decode as a whole is poison as a whole and goes the poison way (retry
 *   tiers, then the dead-letter queue). The relay builds batches only from outbox rows, whose
 *   columns have the schema's limits, and a mail that fails to render fails alone after the split;
 * - a part acked twice counts once;
 * - a part nacked (its reroute nacked by the broker: requeued, delivery-batcher.ts) nacks the
 *   original with requeue, once, and the original is then neither acked nor nacked again by
 *   the other parts (the broker would close the channel on an unknown delivery tag): the whole
 *   batch message comes back and its delivered parts are acked as duplicates.
 */
import type { ConsumeMessage } from 'amqplib';
import type { MailChannel } from './delivery-batcher.js';
import { decodeMailBatch, encodeMailMessage } from './mail-message.js';

export interface MessagePart {
  ch: MailChannel;
  msg: ConsumeMessage;
}

export function splitMailMessage(ch: MailChannel, msg: ConsumeMessage): MessagePart[] {
  const mails = decodeMailBatch(msg.content);
  if (!mails) return [{ ch, msg }];
  const parts = mails.map(
    (mail): ConsumeMessage => ({
      ...msg,
      content: encodeMailMessage(mail),
      properties: { ...msg.properties, messageId: mail.outboxId },
    }),
  );
  const unacked = new Set(parts);
  let nacked = false;
  const view: MailChannel = {
    ack(part) {
      if (!unacked.delete(part) || nacked) return;
      if (unacked.size === 0) ch.ack(msg);
    },
    nack(part, _allUpTo, requeue) {
      if (!unacked.has(part) || nacked) return;
      // a nack that throws (channel gone) leaves the original unacked, for the broker to redeliver
      ch.nack(msg, false, requeue);
      nacked = true;
    },
    publish: (exchange, routingKey, content, options) => ch.publish(exchange, routingKey, content, options),
    waitForConfirms: () => ch.waitForConfirms(),
    on: (event, listener) => ch.on(event, listener),
    off: (event, listener) => ch.off(event, listener),
    close: () => ch.close(),
    isOpen: () => ch.isOpen?.() ?? true,
  };
  return parts.map((part) => ({ ch: view, msg: part }));
}
