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
 * `dead-letters` and `redrive` hold a lock on the queue for their pass (MailQueues.lock), so a
 * second one at the same time is refused instead of interleaving with the first.
 *
 * The text output shows fields of the queue's messages (recipient, kind, the remote SMTP
 * server's last error …) that anyone able to publish there, or the remote server, chose: every
 * control character in them is escaped (`printable`), so they can neither fake a line nor send
 * the terminal an escape sequence. `--json` shows them as they are (JSON escapes them).
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
        : `${d.messages} message(s)${d.queue.endsWith('.work') ? `, ${d.consumers} consumer(s)` : ''}${
            d.retiring
              ? ": an older version's retry queue; its mails go back to the work queue when their delay runs out, then the email worker deletes it"
              : ''
          }`;
    ctx.out(`${d.queue.padEnd(width)}  ${what}`);
  }
}

/**
 * Characters a line of text output must not carry raw: control characters (C0, DEL, C1), the
 * line and paragraph separators U+2028/2029, the bidi controls (U+202A–202E, U+2066–2069, and
 * the marks U+061C, U+200E, U+200F) that reorder what a terminal shows, and the backslash that
 * introduces the escapes.
 */
const UNPRINTABLE = /[\p{Cc}\u2028\u2029\u202A-\u202E\u2066-\u2069\u061C\u200E\u200F\\]/gu;

const ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t', '\\': '\\\\' };

/** `text` as part of one line of output: each unprintable character escaped (\n, \x1b, \u202e) */
export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => {
    const known = ESCAPES[c];
    if (known) return known;
    const code = c.codePointAt(0)!;
    return code < 0x100
      ? `\\x${code.toString(16).padStart(2, '0')}`
      : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** the text lines of one dead letter: one per mail, a batch message's marked `batch i/n:` */
export function describeLetter(letter: DeadLetter): string[] {
  const counts = `attempts=${letter.attempts ?? '?'} outage-retries=${letter.outageRetries ?? '?'}${
    letter.redriven ? ` redriven=${letter.redriven}` : ''
  }`;
  const error = letter.lastError ? `  ${printable(letter.lastError.trim())}` : '';
  if (letter.poison)
    return [
      `poison  message-id=${letter.messageId === null ? '-' : printable(letter.messageId)}  ${letter.bytes} bytes  ${counts}${error}`,
    ];
  const n = letter.mails.length;
  return letter.mails.map(
    (m, i) =>
      `${n > 1 ? `batch ${i + 1}/${n}: ` : ''}${[m.outboxId, m.shardId, m.tenantId, m.kind, m.recipient]
        .map(printable)
        .join('  ')}  ${counts}${error}`,
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
  const { taken } = await withQueues(ctx, (q) =>
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
      shown.length < taken
        ? `; the oldest ${shown.length} message(s) shown (--limit counts messages; a batch message is one, whatever its mails)`
        : ''
    }`,
  );
  for (const letter of shown) for (const line of describeLetter(letter)) ctx.out(line);
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
  let overLimit = 0;
  /** ids of --id whose message was not moved because the limit was reached */
  const notMoved = new Set<string>();
  const { taken, total } = await withQueues(ctx, (q) =>
    q.pass(
      (letter) => {
        if (letter.poison) {
          poison++;
          return 'requeue';
        }
        if (ids.size > 0) {
          const matching = letter.mails.filter((m) => ids.has(m.outboxId));
          if (matching.length === 0) return 'requeue';
          if (moved >= limit) {
            overLimit++;
            for (const m of matching) notMoved.add(m.outboxId);
            return 'requeue';
          }
          for (const m of matching) found.add(m.outboxId);
        } else if (moved >= limit) {
          overLimit++;
          return 'requeue';
        }
        moved++;
        movedMails += letter.mails.length;
        return 'redrive';
      },
      // with no --id to look for, the pass may end as soon as the limit is reached (the pass goes
      // on to the end anyway once it put a message back, so that the queue keeps its order)
      () => ids.size === 0 && moved >= limit,
    ),
  );
  const missing = [...ids].filter((id) => !found.has(id) && !notMoved.has(id));
  if (ids.size > 0 && found.size === 0)
    throw new UserError(
      `no dead-lettered mail has outbox id ${missing.join(', ')} (looked at ${taken} message(s))`,
    );
  if (missing.length > 0) ctx.warn(`not in the dead-letter queue: ${missing.join(', ')}`);
  const left: string[] = [];
  if (poison) left.push(`left ${poison} poison message(s) in the dead-letter queue`);
  if (overLimit)
    left.push(
      `left ${overLimit} more mail message(s) there, over --limit ${limit} (it counts messages, not mails)`,
    );
  // the pass ended at the limit before it put any message back: the rest was not read, and stays
  // in its order (so nothing is known about the poison there)
  if (taken < total && ids.size === 0 && moved >= limit)
    left.push(`stopped at --limit ${limit}: the ${total - taken} message(s) behind were not read`);
  ctx.out(
    `moved ${moved} message(s) (${movedMails} mail(s)) to the work queue with their attempts reset${
      left.length ? `; ${left.join('; ')}` : ''
    }`,
  );
}
