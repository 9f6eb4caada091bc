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
import { clearDeadLetterMarks } from '../dead-letter-marks.js';
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

/**
 * What `mail redrive` moves: poison stays, only the mails of `ids` when given, at most `limit`
 * messages, and only letters `movable` allows (their dead-letter marks cleared). Each pass gets
 * a fresh one, with its own counts.
 */
function redriveSelection(ids: ReadonlySet<string>, limit: number, movable: (letter: DeadLetter) => boolean) {
  const s = {
    found: new Set<string>(),
    moved: 0,
    movedMails: 0,
    poison: 0,
    overLimit: 0,
    /** ids of --id whose message was not moved because the limit was reached */
    notMoved: new Set<string>(),
    /** messages left because a mail's mark could not be cleared (or it came in meanwhile) */
    notCleared: 0,
    notClearedIds: new Set<string>(),
  };
  const decide = (letter: DeadLetter): 'requeue' | 'redrive' => {
    if (letter.poison) {
      s.poison++;
      return 'requeue';
    }
    let matching = letter.mails;
    if (ids.size > 0) {
      matching = letter.mails.filter((m) => ids.has(m.outboxId));
      if (matching.length === 0) return 'requeue';
      if (s.moved >= limit) {
        s.overLimit++;
        for (const m of matching) s.notMoved.add(m.outboxId);
        return 'requeue';
      }
    } else if (s.moved >= limit) {
      s.overLimit++;
      return 'requeue';
    }
    if (!movable(letter)) {
      s.notCleared++;
      for (const m of matching) s.notClearedIds.add(m.outboxId);
      return 'requeue';
    }
    for (const m of matching) s.found.add(m.outboxId);
    s.moved++;
    s.movedMails += letter.mails.length;
    return 'redrive';
  };
  // with no --id to look for, a pass may end as soon as the limit is reached (the pass goes on to
  // the end anyway once it put a message back, so that the queue keeps its order)
  const stop = () => ids.size === 0 && s.moved >= limit;
  return { s, decide, stop };
}

/**
 * Two passes: the first only reads which mails would move (every message put back, in order),
 * then their dead-letter marks on the shard masters are cleared (dead-letter-marks.ts), then the
 * second moves those whose marks are cleared. A mail whose mark could not be cleared stays in the
 * dead-letter queue (a warning names the shard and why): moved while still marked, it would not
 * be re-published by the worker's lost-mail sweep should the broker drop it again.
 */
export async function redriveDeadLetters(
  ctx: CtlContext,
  opts: { id?: string[]; limit?: string },
): Promise<void> {
  const limit = positiveCount('--limit', opts.limit) ?? Number.POSITIVE_INFINITY;
  const ids = new Set(opts.id ?? []);
  for (const id of ids)
    if (!/^[0-9A-Za-z_-]{1,64}$/.test(id)) throw new UserError(`--id '${id}' is not an outbox id`);
  const { taken, total, unclearable, state } = await withQueues(ctx, async (q) => {
    const planned = redriveSelection(ids, limit, () => true);
    const toClear: DeadLetter['mails'] = [];
    await q.pass((letter) => {
      if (planned.decide(letter) === 'redrive') toClear.push(...letter.mails);
      return 'requeue';
    });
    const { cleared, failures } = await clearDeadLetterMarks(ctx, toClear);
    for (const f of failures)
      ctx.warn(`could not clear the dead-letter marks on ${f}; its mails stay in the dead-letter queue`);
    const sel = redriveSelection(ids, limit, (letter) => letter.mails.every((m) => cleared.has(m.outboxId)));
    const result = await q.pass(sel.decide, sel.stop);
    return { ...result, unclearable: failures, state: sel.s };
  });
  const missing = [...ids].filter(
    (id) => !state.found.has(id) && !state.notMoved.has(id) && !state.notClearedIds.has(id),
  );
  if (ids.size > 0 && state.found.size === 0 && state.notClearedIds.size > 0)
    throw new UserError(
      `the dead-letter marks of ${[...state.notClearedIds].join(', ')} could not be cleared (${unclearable.join('; ') || 'they came in during the command'}); nothing moved`,
    );
  if (ids.size > 0 && state.found.size === 0)
    throw new UserError(
      `no dead-lettered mail has outbox id ${missing.join(', ')} (looked at ${taken} message(s))`,
    );
  if (missing.length > 0) ctx.warn(`not in the dead-letter queue: ${missing.join(', ')}`);
  const left: string[] = [];
  if (state.poison) left.push(`left ${state.poison} poison message(s) in the dead-letter queue`);
  if (state.overLimit)
    left.push(
      `left ${state.overLimit} more mail message(s) there, over --limit ${limit} (it counts messages, not mails)`,
    );
  if (state.notCleared)
    left.push(
      `left ${state.notCleared} message(s) whose dead-letter marks could not be cleared or that came in during the command (run redrive again)`,
    );
  // the pass ended at the limit before it put any message back: the rest was not read, and stays
  // in its order (so nothing is known about the poison there)
  if (taken < total && ids.size === 0 && state.moved >= limit)
    left.push(`stopped at --limit ${limit}: the ${total - taken} message(s) behind were not read`);
  ctx.out(
    `moved ${state.moved} message(s) (${state.movedMails} mail(s)) to the work queue with their attempts reset${
      left.length ? `; ${left.join('; ')}` : ''
    }`,
  );
}
