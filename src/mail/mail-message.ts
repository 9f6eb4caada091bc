/**
 * What travels from the outbox relay to the consumer: outbox rows, self-contained (the consumer
 * needs no lookup to render them). `outboxId` is the idempotency key end to end: AMQP
 * `messageId` of a single-mail message, SMTP `Message-ID`, and the `delivered_at` record on the
 * shard master.
 *
 * Two shapes on the work queue: a single mail (`MailMessage`: what the retry tiers and the
 * dead-letter queue always hold), and a batch `{ mails: MailMessage[] }` of up to
 * MAX_MAILS_PER_MESSAGE rows of ONE shard, which the relay publishes so that the broker and the
 * consumer handle one message per batch instead of one per mail (split-mail-message.ts).
 */
import { z } from 'zod';

export const mailMessageSchema = z.object({
  outboxId: z.string().min(1).max(64),
  shardId: z.string().min(1).max(63),
  tenantId: z.string().min(1).max(63),
  kind: z.string().max(40),
  recipient: z.string().max(254),
  payload: z.record(z.string(), z.unknown()),
});
export type MailMessage = z.infer<typeof mailMessageSchema>;

export const MAX_MAILS_PER_MESSAGE = 64;

const mailBatchSchema = z.object({
  mails: z.array(mailMessageSchema).min(2).max(MAX_MAILS_PER_MESSAGE),
});

/** undefined when the bytes are not a single-mail message (a batch or a poison message) */
export function decodeMailMessage(body: Buffer): MailMessage | undefined {
  try {
    const r = mailMessageSchema.safeParse(JSON.parse(body.toString('utf8')));
    return r.success ? r.data : undefined;
  } catch {
    return undefined;
  }
}

export function encodeMailMessage(m: MailMessage): Buffer {
  return Buffer.from(JSON.stringify(m), 'utf8');
}

/** several rows of one shard as one message; one row is sent as a single-mail message */
export function encodeMails(mails: readonly MailMessage[]): Buffer {
  if (mails.length === 0 || mails.length > MAX_MAILS_PER_MESSAGE)
    throw new RangeError(`a message carries 1 to ${MAX_MAILS_PER_MESSAGE} mails, got ${mails.length}`);
  if (mails.length === 1) return encodeMailMessage(mails[0]!);
  const shards = new Set(mails.map((m) => m.shardId));
  if (shards.size > 1) throw new RangeError('a batch message carries the mails of one shard');
  return Buffer.from(JSON.stringify({ mails }), 'utf8');
}

/** the mails of a batch message; undefined for anything else (a single mail, or poison) */
export function decodeMailBatch(body: Buffer): MailMessage[] | undefined {
  try {
    const r = mailBatchSchema.safeParse(JSON.parse(body.toString('utf8')));
    if (!r.success) return undefined;
    const shard = r.data.mails[0]!.shardId;
    return r.data.mails.every((m) => m.shardId === shard) ? r.data.mails : undefined;
  } catch {
    return undefined;
  }
}
