/**
 * `mail status|dead-letters|redrive`: the email pipeline's queues on RabbitMQ.
 *
 * A mail ends in the dead-letter queue `shardgate.mail.dead` when the SMTP server refused it with
 * a 5xx on every attempt, when it is poison (not a mail at all), or after about a day of outage
 * retries (src/mail/delivery-batcher.ts). Its outbox row stays undelivered on the shard master, so
 * the mail is owed, not lost: once the cause is fixed, `mail redrive` sends it back to the work
 * queue with its attempts reset, and the worker mails it once (a redriven copy of a mail that was
 * delivered meanwhile is recognised by its outbox row and not sent again).
 *
 * RabbitMQ has no way to read a queue without taking messages off it, and a taken message that is
 * handed back (nack/requeue) counts as a failed delivery on a quorum queue in RabbitMQ 4.0–4.2,
 * which drops it after 20. So `dead-letters` takes every message once and publishes it again at
 * the tail (confirmed before the original is acked): a whole pass leaves the queue as it was.
 */
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { type DeadLetter, MailQueues } from '../mail-queues.js';
import { wholeNumber } from '../whole-number.js';

/** `--limit` and friends: a whole number ≥ 1, or a user error naming the option */
export function positiveCount(option: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = wholeNumber(raw, 1, 999_999_999);
  if (n === undefined) throw new UserError(`${option} must be a whole number ≥ 1, got '${raw}'`);
  return n;
}

async function withQueues<T>(ctx: CtlContext, fn: (q: MailQueues) => Promise<T>): Promise<T> {
  const queues = await MailQueues.open(ctx.env.SHARDGATE_AMQP_URL);
  try {
    return await fn(queues);
  } finally {
    await queues.close();
  }
}

export async function mailStatus(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  const depths = await withQueues(ctx, (q) => q.depths());
  if (opts.json) {
    ctx.out(JSON.stringify({ queues: depths }, null, 2));
    return;
  }
  const width = Math.max(...depths.map((d) => d.queue.length));
  for (const d of depths) {
    const what =
      d.messages === null
        ? 'not declared (no email worker has connected yet)'
        : `${d.messages} message(s)${d.queue.endsWith('.work') ? `, ${d.consumers} consumer(s)` : ''}`;
    ctx.out(`${d.queue.padEnd(width)}  ${what}`);
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function describe(letter: DeadLetter): string[] {
  const counts = `attempts=${letter.attempts ?? '?'} outage-retries=${letter.outageRetries ?? '?'}${
    letter.redriven ? ` redriven=${letter.redriven}` : ''
  }`;
  const error = letter.lastError ? `  ${oneLine(letter.lastError)}` : '';
  if (letter.poison)
    return [`poison  message-id=${letter.messageId ?? '-'}  ${letter.bytes} bytes  ${counts}${error}`];
  return letter.mails.map(
    (m) => `${m.outboxId}  ${m.shardId}  ${m.tenantId}  ${m.kind}  ${m.recipient}  ${counts}${error}`,
  );
}

export async function listDeadLetters(
  ctx: CtlContext,
  opts: { json?: boolean; limit?: string },
): Promise<void> {
  const limit = positiveCount('--limit', opts.limit) ?? 100;
  const shown: DeadLetter[] = [];
  let poison = 0;
  let mails = 0;
  const taken = await withQueues(ctx, (q) =>
    q.pass((letter) => {
      if (letter.poison) poison++;
      mails += letter.mails.length;
      if (shown.length < limit) shown.push(letter);
      return 'requeue';
    }),
  );
  if (opts.json) {
    ctx.out(
      JSON.stringify({ messages: taken, mails, poison, shown: shown.length, deadLetters: shown }, null, 2),
    );
    return;
  }
  ctx.out(
    `${taken} message(s) in the dead-letter queue: ${mails} mail(s), ${poison} poison${
      shown.length < taken ? `; the oldest ${shown.length} shown (--limit)` : ''
    }`,
  );
  for (const letter of shown) for (const line of describe(letter)) ctx.out(line);
}

export async function redriveDeadLetters(
  ctx: CtlContext,
  opts: { id?: string[]; limit?: string },
): Promise<void> {
  const limit = positiveCount('--limit', opts.limit) ?? Number.POSITIVE_INFINITY;
  const ids = new Set(opts.id ?? []);
  for (const id of ids)
    if (!/^[0-9A-Za-z_-]{1,64}$/.test(id)) throw new UserError(`--id '${id}' is not an outbox id`);
  const found = new Set<string>();
  let moved = 0;
  let movedMails = 0;
  let poison = 0;
  const taken = await withQueues(ctx, (q) =>
    q.pass(
      (letter) => {
        if (letter.poison) {
          poison++;
          return 'requeue';
        }
        if (moved >= limit) return 'requeue';
        if (ids.size > 0) {
          const matching = letter.mails.filter((m) => ids.has(m.outboxId));
          if (matching.length === 0) return 'requeue';
          for (const m of matching) found.add(m.outboxId);
        }
        moved++;
        movedMails += letter.mails.length;
        return 'redrive';
      },
      // with no --id to look for, the pass can end as soon as the limit is reached
      () => ids.size === 0 && moved >= limit,
    ),
  );
  const missing = [...ids].filter((id) => !found.has(id));
  if (ids.size > 0 && found.size === 0)
    throw new UserError(
      `no dead-lettered mail has outbox id ${missing.join(', ')} (looked at ${taken} message(s))`,
    );
  if (missing.length > 0) ctx.warn(`not in the dead-letter queue: ${missing.join(', ')}`);
  ctx.out(
    `moved ${moved} message(s) (${movedMails} mail(s)) to the work queue with their attempts reset${
      poison ? `; left ${poison} poison message(s) in the dead-letter queue` : ''
    }`,
  );
}
