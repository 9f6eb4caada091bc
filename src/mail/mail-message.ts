/**
 * What travels from the outbox relay to the consumer: one outbox row, self-contained (the
 * consumer needs no lookup to render it). `outboxId` is the idempotency key end to end: AMQP
 * `messageId`, SMTP `Message-ID`, and the `delivered_at` record on the shard master.
 */
import { z } from 'zod';

export const MAIL_KINDS = ['welcome', 'password_changed', 'loan_receipt', 'return_receipt'] as const;

export const mailMessageSchema = z.object({
  outboxId: z.string().min(1).max(64),
  shardId: z.string().min(1).max(63),
  tenantId: z.string().min(1).max(63),
  kind: z.string().max(40),
  recipient: z.string().max(254),
  payload: z.record(z.string(), z.unknown()),
});
export type MailMessage = z.infer<typeof mailMessageSchema>;

/** undefined when the bytes are not a mail message at all (a poison message) */
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
