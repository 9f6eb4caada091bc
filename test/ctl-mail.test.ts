/**
 * `shardgate-ctl mail status|dead-letters|redrive` against the real stack: RabbitMQ :5673, the
 * email worker, the shard masters' outbox and the SMTP sink.
 *
 * The sink refuses, with 550 at RCPT TO, the recipients listed in its `.refuse` file: a mail to
 * one is tried the configured number of times and dead-lettered for real, as a mail to a
 * mailbox that does not exist. Once the address is taken off the list (the mailbox "fixed"),
 * `mail redrive` sends it back and it arrives exactly once.
 *
 * Every message this file puts into the dead-letter queue is taken out again at the end, by its
 * outbox or message id; the others are left in their order. Where this file moves messages
 * itself (removeMine, toHead) it holds the lock that `mail dead-letters|redrive` take.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_QUEUE } from '../src/mail/amqp-topology.js';
import { encodeMails, type MailMessage } from '../src/mail/mail-message.js';
import { metricValue } from '../stack/metric-samples.js';
import { MAIL_DIR, STATE_DIR } from '../stack/paths.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { workerUrl } from '../stack/urls.js';
import { api } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { doubled, mailsTo } from './helpers/mailbox.js';
import { deliveredMarks, insertOutboxRow, outboxId, welcomeMessage } from './helpers/outbox.js';
import { node } from './helpers/shard-db.js';
import { AMQP_URL } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const SHARD = 'shard-2';
/** `mail redrive` clears the mails' dead-letter marks on the shard masters first: it needs the password */
const DB_ENV = { SHARDGATE_DB_PASSWORD: dbPassword() };
const tenant = uniqueTenantId('ctlmail');
const REFUSE = join(MAIL_DIR, '.refuse');
/** CONTRACT.md §5: a user error is exactly one line on stderr, naming the command and the culprit */
const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;
/** the exclusive queue a `mail dead-letters|redrive` pass holds (control-plane/mail-queues.ts) */
const LOCK_QUEUE = 'shardgate.mail.ctl-lock';
const LOCKED =
  'another shardgate-ctl mail command is working on the dead-letter queue; try again when it has finished';

interface Listed {
  messageId: string | null;
  mails: MailMessage[];
  poison: boolean;
  attempts: number | null;
  outageRetries: number | null;
  lastError: string | null;
  redriven: number;
}
interface Listing {
  messages: number;
  mails: number;
  poison: number;
  deadLetters: Listed[];
}

/** every message of the dead-letter queue, as `mail dead-letters --json` shows it */
function listing(): Listing {
  const r = ctl(['mail', 'dead-letters', '--json', '--limit', '1000000']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as Listing;
}

/** a message's own key: its outbox id, or for poison its message id */
const keyOf = (l: Listed) => (l.poison ? `poison:${l.messageId}` : l.mails.map((m) => m.outboxId).join('+'));

/** the messages of this file, in queue order */
function ours(l: Listing, keys: Set<string>): string[] {
  return l.deadLetters.map(keyOf).filter((k) => keys.has(k));
}

const address = (label: string) => `${label}-${randomBytes(3).toString('hex')}-${tenant}@example.com`;

/** what the outbox ids and message ids this file put into the dead-letter queue are */
const mine = new Set<string>();

async function publishDead(bodies: { body: Buffer; messageId: string; headers: Record<string, unknown> }[]) {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createConfirmChannel();
    for (const b of bodies)
      ch.publish('', DEAD_QUEUE, b.body, { persistent: true, messageId: b.messageId, headers: b.headers });
    await ch.waitForConfirms();
  } finally {
    await conn.close();
  }
}

/**
 * Take the lock of the dead-letter queue on `conn` (as a `mail` command's pass does), waiting up
 * to 10 s for a command that holds it; it is released when `conn` closes.
 */
async function lockOn(conn: amqp.ChannelModel): Promise<void> {
  for (let tries = 0; ; tries++) {
    const ch = await conn.createChannel();
    ch.on('error', () => {});
    try {
      await ch.assertQueue(LOCK_QUEUE, { exclusive: true, autoDelete: true, durable: false });
      await ch.close();
      return;
    } catch (error) {
      if ((error as { code?: number }).code !== 405 || tries >= 50) throw error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** take this file's messages out of the dead-letter queue; the others go back to its tail, in order */
async function removeMine(): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    await lockOn(conn);
    const ch = await conn.createConfirmChannel();
    const total = (await ch.checkQueue(DEAD_QUEUE)).messageCount;
    for (let i = 0; i < total; i++) {
      const m = await ch.get(DEAD_QUEUE, { noAck: false });
      if (!m) break;
      const body = m.content.toString();
      const isMine =
        mine.has(String(m.properties.messageId)) ||
        [...mine].some((id) => body.includes(`"outboxId":"${id}"`));
      if (isMine) ch.ack(m);
      else await toTail(ch, m);
    }
    await ch.close();
  } finally {
    await conn.close();
  }
}

/** move a message taken off the dead-letter queue to its tail: the copy confirmed, then the original acked */
async function toTail(ch: amqp.ConfirmChannel, m: amqp.GetMessage): Promise<void> {
  ch.publish('', DEAD_QUEUE, m.content, { ...m.properties, persistent: true });
  await ch.waitForConfirms();
  ch.ack(m);
}

/**
 * Publish `bodies` to the dead-letter queue and put them at its head: the messages that were
 * there before go behind them, in their order (each taken once and published again at the tail,
 * confirmed before its ack, as `mail dead-letters` does), so that a `redrive` without --id
 * meets this file's messages first and moves no other.
 */
async function toHead(bodies: { body: Buffer; messageId: string; headers: Record<string, unknown> }[]) {
  const conn = await amqp.connect(AMQP_URL);
  try {
    await lockOn(conn);
    const ch = await conn.createConfirmChannel();
    const before = (await ch.checkQueue(DEAD_QUEUE)).messageCount;
    for (const b of bodies)
      ch.publish('', DEAD_QUEUE, b.body, { persistent: true, messageId: b.messageId, headers: b.headers });
    await ch.waitForConfirms();
    for (let i = 0; i < before; i++) {
      const m = await ch.get(DEAD_QUEUE, { noAck: false });
      if (!m) break;
      await toTail(ch, m);
    }
    await ch.close();
  } finally {
    await conn.close();
  }
}

async function arrivesOnce(to: string): Promise<void> {
  await waitFor(() => mailsTo(to).length > 0, {
    timeoutMs: 15_000,
    intervalMs: 100,
    what: `a mail to ${to}`,
  });
  // a second copy would come right behind the first
  await new Promise((r) => setTimeout(r, 1500));
  expect(mailsTo(to)).toHaveLength(1);
}

beforeAll(async () => {
  await createTenant(tenant, SHARD);
});

afterAll(async () => {
  rmSync(REFUSE, { force: true });
  await removeMine();
  removeTenant(tenant);
});

describe('shardgate-ctl mail', () => {
  it('a mail the SMTP server refuses is dead-lettered for real; once the mailbox is fixed, redrive sends it once', async () => {
    const fixed = address('refused');
    const still = address('still-refused');
    writeFileSync(REFUSE, `${fixed}\n${still}\n`);
    await new Promise((r) => setTimeout(r, 600)); // the sink re-reads the list every 250 ms
    for (const email of [fixed, still]) {
      const r = await api('POST', '/v1/members', {
        tenant,
        body: { email, name: 'Refused', password: 'correct horse battery' },
      });
      expect(r.status).toBe(201);
    }

    // the stack's worker allows 4 attempts, 1 + 2 + 4 s apart
    let dead: Listed[] = [];
    await waitFor(
      () => {
        dead = listing().deadLetters.filter((l) => l.mails.some((m) => m.tenantId === tenant));
        return dead.length === 2;
      },
      { timeoutMs: 45_000, intervalMs: 1000, what: 'both refused welcome mails in the dead-letter queue' },
    );
    for (const l of dead) {
      mine.add(l.mails[0]!.outboxId);
      expect(l.poison).toBe(false);
      expect(l.attempts).toBe(4);
      expect(l.outageRetries).toBe(0);
      expect(l.lastError).toMatch(/550/);
      expect(l.mails[0]!.kind).toBe('welcome');
    }
    const byRecipient = new Map(dead.map((l) => [l.mails[0]!.recipient, l.mails[0]!.outboxId]));
    expect(mailsTo(fixed)).toHaveLength(0);

    // the text listing names the mail, its attempts and the SMTP server's answer
    const text = ctl(['mail', 'dead-letters', '--limit', '1000000']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(
      new RegExp(
        `${byRecipient.get(fixed)}  ${SHARD}  ${tenant}  welcome  ${fixed}  attempts=4 outage-retries=0  .*550`,
      ),
    );

    // the mailbox is fixed: only that mail is sent back
    writeFileSync(REFUSE, `${still}\n`);
    await new Promise((r) => setTimeout(r, 600));
    const redrive = ctl(['mail', 'redrive', '--id', byRecipient.get(fixed)!], DB_ENV);
    expect(redrive.stderr).toBe('');
    expect(redrive.code).toBe(0);
    expect(redrive.stdout).toMatch(/^moved 1 message\(s\) \(1 mail\(s\)\) to the work queue/);
    await arrivesOnce(fixed);
    expect(await deliveredMarks(node(SHARD, 'master').port, [byRecipient.get(fixed)!])).toEqual({
      [byRecipient.get(fixed)!]: true,
    });

    // the other one stays dead and undelivered, and is not in the mailbox
    const after = listing().deadLetters.filter((l) => l.mails.some((m) => m.tenantId === tenant));
    expect(after.map((l) => l.mails[0]!.recipient)).toEqual([still]);
    expect(mailsTo(still)).toHaveLength(0);

    // redriven while the mailbox still refuses: it goes through all its attempts again (they
    // were reset) and comes back dead, counted as redriven once
    const again = ctl(['mail', 'redrive', '--id', byRecipient.get(still)!], DB_ENV);
    expect(again.code).toBe(0);
    await waitFor(
      () => {
        const l = listing().deadLetters.find((x) => x.mails[0]?.outboxId === byRecipient.get(still));
        return l?.redriven === 1 && l.attempts === 4;
      },
      {
        timeoutMs: 45_000,
        intervalMs: 1000,
        what: 'the still-refused mail dead again after 4 more attempts',
      },
    );

    // a second redrive of the mail already sent finds nothing, and says so in one line
    const none = ctl(['mail', 'redrive', '--id', byRecipient.get(fixed)!], DB_ENV);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(ONE_LINE);
    expect(none.stderr).toMatch(/no dead-lettered mail has outbox id/);
  });

  it('dead-letters leaves the queue in its order; a doubled dead letter is mailed once; poison stays', async () => {
    const master = node(SHARD, 'master').port;
    const [a, b] = [outboxId(), outboxId()];
    const [toA, toB] = [address('dl-a'), address('dl-b')];
    await insertOutboxRow(master, { id: a, tenant, to: toA, delivered: false });
    await insertOutboxRow(master, { id: b, tenant, to: toB, delivered: false });
    const mail = (id: string, to: string) => welcomeMessage(id, to, tenant, SHARD);
    const poisonId = `poison-${randomBytes(4).toString('hex')}`;
    const headers = { 'x-attempts': 4, 'x-outage-retries': 0, 'x-last-error': 'dead for the test' };
    for (const id of [a, b, poisonId]) mine.add(id);
    await publishDead([
      { body: Buffer.from('{"not":"a mail"}'), messageId: poisonId, headers },
      { body: encodeMails([mail(a, toA)]), messageId: a, headers },
      // the same mail twice, as an interrupted move can leave it
      { body: encodeMails([mail(a, toA)]), messageId: a, headers },
      { body: encodeMails([mail(b, toB)]), messageId: b, headers },
    ]);
    const keys = new Set([`poison:${poisonId}`, a, b]);
    const expected = [`poison:${poisonId}`, a, a, b];

    const first = listing();
    expect(ours(first, keys)).toEqual(expected);
    const poison = first.deadLetters.find((l) => l.messageId === poisonId)!;
    expect(poison).toMatchObject({ poison: true, mails: [], attempts: 4, lastError: 'dead for the test' });
    // reading moved nothing: the same messages, in the same order
    const second = listing();
    expect(second.messages).toBe(first.messages);
    expect(second.deadLetters.map(keyOf)).toEqual(first.deadLetters.map(keyOf));
    // the worker's gauge, the thing to alert on, counts the same queue
    const metrics = await (await fetch(`${workerUrl}/metrics`)).text();
    const gauge = metricValue(metrics, 'shardgate_mail_queue_messages', { queue: 'shardgate.mail.dead' });
    expect(gauge).toBe(second.messages);

    const missing = outboxId();
    const r = ctl(['mail', 'redrive', '--id', a, '--id', b, '--id', missing], DB_ENV);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^moved 3 message\(s\) \(3 mail\(s\)\) to the work queue/);
    expect(r.stdout).toMatch(/left \d+ poison message\(s\)/);
    expect(r.stderr).toBe(`shardgate-ctl: not in the dead-letter queue: ${missing}\n`);
    await arrivesOnce(toA);
    await arrivesOnce(toB);
    expect(doubled(mailsTo(new Set([toA, toB])))).toEqual([]);
    expect(await deliveredMarks(master, [a, b])).toEqual({ [a]: true, [b]: true });

    const third = listing();
    expect(ours(third, keys)).toEqual([`poison:${poisonId}`]);
  });

  it('dead-letters and redrive take a lock on the dead-letter queue: a second command is refused in one line, status is not', async () => {
    const conn = await amqp.connect(AMQP_URL);
    let held = true;
    try {
      await lockOn(conn);
      for (const args of [
        ['mail', 'dead-letters'],
        ['mail', 'dead-letters', '--json'],
        ['mail', 'redrive', '--id', outboxId(), '--limit', '1'],
        ['mail', 'redrive', '--id', outboxId()],
      ]) {
        const r = ctl(args);
        const command = args.slice(0, 2).join(' ');
        expect(r.stdout, args.join(' ')).toBe('');
        expect(r.stderr, args.join(' ')).toBe(
          `shardgate-ctl: ${command}: ${LOCKED} (see shardgate-ctl ${command} --help)\n`,
        );
        expect(r.code, args.join(' ')).toBe(1);
      }
      // the depths need no lock
      const status = ctl(['mail', 'status']);
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      await conn.close();
      held = false;
      // released with the connection that held it
      const r = ctl(['mail', 'dead-letters']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^\d+ message\(s\) in the dead-letter queue/);
    } finally {
      if (held) await conn.close();
    }
  });

  it('redrive --limit keeps the queue order, and counts the poison left exactly', async () => {
    const master = node(SHARD, 'master').port;
    const [a, b, c] = [outboxId(), outboxId(), outboxId()];
    const [toA, toB, toC] = [address('lim-a'), address('lim-b'), address('lim-c')];
    for (const [id, to] of [
      [a, toA],
      [b, toB],
      [c, toC],
    ] as const)
      await insertOutboxRow(master, { id, tenant, to, delivered: false });
    const mail = (id: string, to: string) => welcomeMessage(id, to, tenant, SHARD);
    const headers = { 'x-attempts': 4, 'x-outage-retries': 0, 'x-last-error': 'dead for the test' };
    const [p1, p2, p3, p4] = [1, 2, 3, 4].map((i) => `poison-${i}-${randomBytes(4).toString('hex')}`);
    for (const id of [a, b, c, p1!, p2!, p3!, p4!]) mine.add(id);
    const poisonBody = (id: string) => ({ body: Buffer.from('{"not":"a mail"}'), messageId: id, headers });
    const keys = new Set([a, b, c, ...[p1, p2, p3, p4].map((p) => `poison:${p}`)]);
    const othersPoison = (l: Listing) =>
      l.poison - ours(l, keys).filter((k) => k.startsWith('poison:')).length;
    /** what the summary says about the messages of others the pass put back */
    const othersLeft = (l: Listing, poison: number) => {
      const mails = l.deadLetters.filter((d) => !d.poison && !keys.has(keyOf(d))).length;
      return `left ${poison + othersPoison(l)} poison message(s) in the dead-letter queue${
        mails
          ? `; left ${mails} more mail message(s) there, over --limit 1 (it counts messages, not mails)`
          : ''
      }`;
    };

    // [P1, P2, A, P3, …]: redrive --limit 1 passes two poison messages before it moves A; it
    // used to stop there, leaving [P3, …, P1, P2] and saying "left 2 poison message(s)"
    await toHead([
      poisonBody(p1!),
      poisonBody(p2!),
      { body: encodeMails([mail(a, toA)]), messageId: a, headers },
      poisonBody(p3!),
    ]);
    const before = listing();
    expect(before.deadLetters.slice(0, 4).map(keyOf)).toEqual([
      `poison:${p1}`,
      `poison:${p2}`,
      a,
      `poison:${p3}`,
    ]);
    const r = ctl(['mail', 'redrive', '--limit', '1'], DB_ENV);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // the poison counted is all of it: the pass went on to the end once it put P1 back
    expect(r.stdout).toBe(
      `moved 1 message(s) (1 mail(s)) to the work queue with their attempts reset; ${othersLeft(before, 3)}\n`,
    );
    const after = listing();
    expect(after.deadLetters.slice(0, 3).map(keyOf)).toEqual([
      `poison:${p1}`,
      `poison:${p2}`,
      `poison:${p3}`,
    ]);
    // the others kept their order too
    const others = (l: Listing) => l.deadLetters.map(keyOf).filter((k) => !keys.has(k));
    expect(others(after)).toEqual(others(before));
    await arrivesOnce(toA);

    // [B, C, C, P4, …]: no message is put back before the limit, so the pass stops there and
    // the rest is not read (nothing is claimed about the poison in it)
    await toHead([
      { body: encodeMails([mail(b, toB)]), messageId: b, headers },
      { body: encodeMails([mail(c, toC)]), messageId: c, headers },
      // the same mail twice, as an interrupted move can leave it
      { body: encodeMails([mail(c, toC)]), messageId: c, headers },
      poisonBody(p4!),
    ]);
    const stop = ctl(['mail', 'redrive', '--limit', '1'], DB_ENV);
    expect(stop.stderr).toBe('');
    expect(stop.code).toBe(0);
    expect(stop.stdout).toMatch(
      /^moved 1 message\(s\) \(1 mail\(s\)\) to the work queue with their attempts reset; stopped at --limit 1: the \d+ message\(s\) behind were not read\n$/,
    );
    const stopped = listing();
    expect(stopped.deadLetters.slice(0, 3).map(keyOf)).toEqual([c, c, `poison:${p4}`]);
    await arrivesOnce(toB);

    // with --id, the pass reads the whole queue: the second copy of C is over the limit and goes
    // back in its place, counted as such
    const byId = ctl(['mail', 'redrive', '--id', c, '--id', b, '--limit', '1'], DB_ENV);
    expect(byId.code).toBe(0);
    expect(byId.stderr).toBe(`shardgate-ctl: not in the dead-letter queue: ${b}\n`);
    expect(byId.stdout).toBe(
      `moved 1 message(s) (1 mail(s)) to the work queue with their attempts reset; left ${4 + othersPoison(stopped)} poison message(s) in the dead-letter queue; left 1 more mail message(s) there, over --limit 1 (it counts messages, not mails)\n`,
    );
    await arrivesOnce(toC);
    const last = listing();
    expect(ours(last, keys)).toEqual([c, `poison:${p4}`, `poison:${p1}`, `poison:${p2}`, `poison:${p3}`]);
    expect(last.deadLetters.slice(0, 2).map(keyOf)).toEqual([c, `poison:${p4}`]);
    expect(others(last)).toEqual(others(before));
  });

  it('the text listing escapes control characters of every field, and marks the mails of a batch message', async () => {
    const [x, y1, y2] = [outboxId(), outboxId(), outboxId()];
    const poisonId = `poison-odd-${randomBytes(4).toString('hex')}`;
    for (const id of [x, y1, y2, poisonId]) mine.add(id);
    const odd: MailMessage = {
      outboxId: x,
      shardId: SHARD,
      tenantId: tenant,
      kind: 'welcome\u001b[2J\u001b]0;owned\u0007',
      recipient: `odd-${randomBytes(3).toString('hex')}@example.com\nshardgate-ctl: fake second line`,
      payload: {},
    };
    const lastError = '550-first line\r\n550 second \u202egnp.exe\u009b31m \u2028 \u2066x\u2069\u007f';
    const batchMail = (id: string) => ({ ...welcomeMessage(id, address('batch'), tenant, SHARD) });
    await publishDead([
      { body: encodeMails([odd]), messageId: x, headers: { 'x-attempts': 4, 'x-last-error': lastError } },
      { body: encodeMails([batchMail(y1), batchMail(y2)]), messageId: y1, headers: { 'x-attempts': 4 } },
      {
        body: Buffer.from('\u001b[31mnot a mail'),
        messageId: poisonId,
        headers: { 'x-last-error': 'bad\u001b[0m' },
      },
    ]);

    const r = ctl(['mail', 'dead-letters', '--limit', '1000000']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    // nothing raw reaches the terminal: no control character but the line ends, no bidi control
    expect(r.stdout.replaceAll('\n', '')).not.toMatch(/[\p{Cc}\u2028\u2029\u202a-\u202e\u2066-\u2069]/u);
    const lines = r.stdout.split('\n');
    expect(lines.filter((l) => l.startsWith('shardgate-ctl: fake'))).toEqual([]);
    const line = lines.find((l) => l.startsWith(x))!;
    expect(line).toBe(
      `${x}  ${SHARD}  ${tenant}  welcome\\x1b[2J\\x1b]0;owned\\x07  ${odd.recipient.replace('\n', '\\n')}  attempts=4 outage-retries=0  ` +
        '550-first line\\r\\n550 second \\u202egnp.exe\\x9b31m \\u2028 \\u2066x\\u2069\\x7f',
    );
    // each mail of the batch message on a line of its own, marked as such
    expect(
      lines.filter((l) => l.includes(y1) || l.includes(y2)).map((l) => l.slice(0, l.indexOf('  '))),
    ).toEqual([`batch 1/2: ${y1}`, `batch 2/2: ${y2}`]);
    expect(lines.find((l) => l.includes(poisonId))).toMatch(
      /^poison {2}message-id=poison-odd-\w+ {2}\d+ bytes {2}attempts=0 outage-retries=0 {2}bad\\x1b\[0m$/,
    );
    // one summary line, then one line per mail (or poison message): no line more
    const listed = listing();
    const expectedLines = 1 + listed.deadLetters.reduce((n, l) => n + Math.max(1, l.mails.length), 0);
    expect(lines.at(-1)).toBe('');
    expect(lines.length - 1).toBe(expectedLines);

    // --json keeps the fields as they are (JSON escapes them)
    const json = listed.deadLetters.find((l) => l.messageId === x)!;
    expect(json.mails[0]).toMatchObject({ recipient: odd.recipient, kind: odd.kind });
    expect(json.lastError).toBe(lastError);

    // --limit counts messages: a batch message is one, whatever its mails
    const limited = ctl(['mail', 'dead-letters', '--limit', '1']);
    expect(limited.stdout.split('\n')[0]).toMatch(
      /; the oldest 1 message\(s\) shown \(--limit counts messages/,
    );
  });

  it('status shows every queue and the worker consuming the work queue', () => {
    const r = ctl(['mail', 'status', '--json']);
    expect(r.code).toBe(0);
    const { queues } = JSON.parse(r.stdout) as {
      queues: { queue: string; messages: number | null; consumers: number | null }[];
    };
    expect(queues.map((q) => q.queue)).toEqual([
      'shardgate.mail.work',
      ...[1, 2, 4, 8, 16, 32, 64].map((s) => `shardgate.mail.delay.${s}s`),
      'shardgate.mail.dead',
    ]);
    expect(queues[0]!.consumers).toBeGreaterThanOrEqual(1);
    expect(queues.at(-1)!.messages).toBeGreaterThanOrEqual(1); // this file's poison message
  });

  it("status also shows an older version's retry queue while it exists, as retiring", async () => {
    // such a queue is named like its routing key (src/mail/retry-tiers.ts); this one holds a
    // message the worker never sees: nothing routes to it, and it has no TTL
    const legacy = 'shardgate.mail.retry.64s';
    const conn = await amqp.connect(AMQP_URL);
    const ch = await conn.createConfirmChannel();
    try {
      await ch.assertQueue(legacy, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      ch.sendToQueue(legacy, Buffer.from('held by an older version'), { persistent: true });
      await ch.waitForConfirms();
      const json = ctl(['mail', 'status', '--json']);
      expect(json.stderr).toBe('');
      expect(json.code).toBe(0);
      const { queues } = JSON.parse(json.stdout) as {
        queues: { queue: string; messages: number | null; retiring?: boolean }[];
      };
      expect(queues.at(-1)).toEqual({ queue: legacy, messages: 1, consumers: 0, retiring: true });
      expect(queues.filter((q) => q.retiring)).toHaveLength(1);
      const text = ctl(['mail', 'status']);
      expect(text.code).toBe(0);
      expect(text.stdout.trimEnd().split('\n').at(-1)).toMatch(
        /^shardgate\.mail\.retry\.64s +1 message\(s\): an older version's retry queue; its mails go back to the work queue/,
      );
    } finally {
      await ch.deleteQueue(legacy).catch(() => {});
      await conn.close();
    }
    expect(ctl(['mail', 'status', '--json']).stdout).not.toContain(legacy);
  });

  it('refuses a bad option in one line, and reports an unreachable broker with exit 2 and no password', () => {
    for (const args of [
      ['mail', 'dead-letters', '--limit', '0'],
      ['mail', 'redrive', '--limit', 'many'],
      ['mail', 'redrive', '--id', 'not an id!'],
    ]) {
      const r = ctl(args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toMatch(/--limit|--id/);
      expect(r.stdout).toBe('');
    }
    const down = ctl(['mail', 'status'], { SHARDGATE_AMQP_URL: 'amqp://guest:s3cret@127.0.0.1:1' });
    expect(down.code).toBe(2);
    expect(down.stderr).toMatch(
      /^shardgate-ctl: rabbitmq unreachable at amqp:\/\/127\.0\.0\.1:1: connection refused\n$/,
    );
    expect(down.stderr).not.toMatch(/s3cret/);
  });

  it('a wrong password is a user error (exit 1): the broker answered; the line never shows the password', () => {
    const secret = `ct-wrong-${randomBytes(4).toString('hex')}`;
    const where = `${topology.host}:${topology.rabbitmq.port}`;
    for (const args of [
      ['mail', 'status'],
      ['mail', 'dead-letters'],
    ]) {
      const r = ctl(args, { SHARDGATE_AMQP_URL: `amqp://guest:${secret}@${where}` });
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        `shardgate-ctl: ${args.join(' ')}: rabbitmq at amqp://${where} refused the credentials of SHARDGATE_AMQP_URL (ACCESS_REFUSED) (see shardgate-ctl ${args.join(' ')} --help)\n`,
      );
      expect(r.stderr).not.toContain(secret);
      expect(r.code).toBe(1);
    }
  });

  it('gives up on a frozen broker (SIGSTOP) with exit 2 instead of hanging', () => {
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', 'rabbitmq.pid'), 'utf8'));
    process.kill(-pid, 'SIGSTOP');
    try {
      const r = ctl(['mail', 'dead-letters']);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^shardgate-ctl: rabbitmq unreachable at amqp:\/\/[^\n]+: no answer to connect within 5 s\n$/,
      );
    } finally {
      process.kill(-pid, 'SIGCONT');
    }
  });
});
