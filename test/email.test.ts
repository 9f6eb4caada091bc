/**
 * Issue "email side effects", Done-when, against the real stack (outbox on the shard masters,
 * the email worker, RabbitMQ :5673, the SMTP sink writing .stack/mail/):
 * - register → welcome .eml within 2 s; p50/p99 over 200 registrations printed;
 * - RabbitMQ frozen: 100 registrations all 201; after it resumes exactly 100 welcome emails;
 * - SMTP sink frozen 30 s during 12 registrations (longer than the mail attempts last): all 12
 *   arrive afterwards, none twice;
 * - worker SIGKILLed mid-batch and restarted: none lost; sent again only from the dots-to-COMMIT
 *   gap (docs/operations.md, "Email"), one batch at most, each copy the same Message-ID;
 * - a poison message ends in the dead-letter queue after the configured attempts, others flow;
 * - a row the relay still holds for a moment is mailed as soon as it is free (no retry);
 * - messages published together whose outbox rows are free / held by another delivery /
 *   already delivered / absent: each mailed exactly when it should be, once — as one message
 *   per mail, and as one batch message of the relay (split per mail, rerouted per mail);
 * - every connection of the worker's outbox pool runs READ COMMITTED with a 1 s lock wait.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import type { RowDataPacket } from 'mysql2/promise';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_QUEUE, MAIL_EXCHANGE, MAIL_ROUTING_KEY } from '../src/mail/amqp-topology.js';
import { encodeMails } from '../src/mail/mail-message.js';
import { mailBoundary } from '../src/mail/mime-message.js';
import { createOutboxPool } from '../src/mail/outbox-pool.js';
import { type Labels, metricValue } from '../stack/metric-samples.js';
import { MAIL_DIR, STATE_DIR } from '../stack/paths.js';
import { isAlive } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { workerUrl } from '../stack/urls.js';
import { api, INSTANCES } from './helpers/api.js';
import { etcdOverride, etcdPut } from './helpers/etcd.js';
import { doubled, mailbox, mailsTo } from './helpers/mailbox.js';
import { scrapeMetric } from './helpers/metrics.js';
import { deliveredMarks, insertOutboxRow, outboxId, welcomeMessage } from './helpers/outbox.js';
import { node, rootConnection, rootQuery } from './helpers/shard-db.js';
import { AMQP_URL } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('mail');
const SHARD = 'shard-2';

function pid(name: string): number {
  return Number(readFileSync(join(STATE_DIR, 'pids', `${name}.pid`), 'utf8'));
}

/** signal a stack process and its children (they share its process group) */
function signalGroup(name: string, sig: NodeJS.Signals): void {
  process.kill(-pid(name), sig);
}

let seq = 0;
function addresses(n: number, label: string): string[] {
  return Array.from({ length: n }, () => `${label}-${seq++}-${tenant}@example.com`);
}

/** register every address (concurrency 8); returns when each answered and the answer time */
async function registerAll(emails: string[]): Promise<{ email: string; status: number; at: number }[]> {
  const out: { email: string; status: number; at: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < emails.length) {
        const email = emails[next++]!;
        const r = await api('POST', '/v1/members', {
          tenant,
          body: { email, name: email.split('@')[0], password: 'correct horse battery' },
        });
        out.push({ email, status: r.status, at: Date.now() });
      }
    }),
  );
  return out;
}

async function allArrive(emails: string[], timeoutMs: number): Promise<void> {
  const set = new Set(emails);
  await waitFor(() => new Set(mailsTo(set).map((m) => m.to)).size === set.size, {
    timeoutMs,
    intervalMs: 100,
    what: `${emails.length} emails`,
  });
}

/**
 * publish welcome mails as the relay does (confirmed): one message per mail, or all of them in
 * one batch message; returns when the broker confirmed
 */
async function publishMails(
  mails: [outboxId: string, to: string][],
  { batch = false, shard = SHARD } = {},
): Promise<number> {
  const conn = await amqp.connect(AMQP_URL);
  const message = ([id, to]: [string, string]) => welcomeMessage(id, to, tenant, shard);
  const props = (id: string) => ({
    persistent: true,
    messageId: id,
    contentType: 'application/json',
    headers: { 'x-attempts': 0 },
  });
  try {
    const ch = await conn.createConfirmChannel();
    if (batch) {
      ch.publish(MAIL_EXCHANGE, MAIL_ROUTING_KEY, encodeMails(mails.map(message)), props(`${mails[0]![0]}+`));
    } else {
      for (const m of mails)
        ch.publish(MAIL_EXCHANGE, MAIL_ROUTING_KEY, encodeMails([message(m)]), props(m[0]));
    }
    await ch.waitForConfirms();
    return Date.now();
  } finally {
    await conn.close();
  }
}

/**
 * The dead letter with this message id, acked (taken off the queue), or undefined; the others
 * are left unacked, and the broker puts them back when the channel closes.
 */
async function takeDeadLetter(ch: amqp.Channel, messageId: string): Promise<amqp.GetMessage | undefined> {
  for (let i = 0; i < 1000; i++) {
    const m = await ch.get(DEAD_QUEUE, { noAck: false });
    if (!m) return undefined;
    if (m.properties.messageId === messageId) {
      ch.ack(m);
      return m;
    }
  }
  return undefined;
}

const workerCounter = (name: string, labels: Labels = {}) =>
  scrapeMetric(workerUrl, `shardgate_${name}`, labels);

/** no mail of this test run in flight: the count stays put for a moment */
async function quiet(): Promise<void> {
  let last = -1;
  await waitFor(
    () => {
      const n = mailbox().length;
      const still = n === last;
      last = n;
      return still;
    },
    { timeoutMs: 30_000, intervalMs: 700, what: 'the mailbox to settle' },
  );
}

beforeAll(async () => {
  await createTenant(tenant, SHARD);
});
afterAll(() => {
  removeTenant(tenant);
});

describe('email side effects', () => {
  it('a registration gets its welcome email within 2 s; p50/p99 over 200 registrations', async () => {
    // measure an idle pipeline: mail queued by earlier runs (a bench leaves thousands) goes first
    await quiet();
    const [one] = addresses(1, 'first');
    const [r] = await registerAll([one!]);
    expect(r?.status).toBe(201);
    await allArrive([one!], 2000);
    const [mail] = mailsTo(one!);
    expect(mail?.subject).toBe(`Welcome to ${tenant}`);
    // laid out by mime-message.ts, not MailComposer's fallback: the boundary names the outbox id
    const id = /^<([^@>]+)@shardgate\.local>$/.exec(mail!.messageId)?.[1];
    expect(id).toBeDefined();
    const raw = readFileSync(join(MAIL_DIR, mail!.file), 'utf8');
    expect(raw).toContain(`boundary="${mailBoundary(id!)}"`);
    expect(raw).toMatch(/^Content-Type: text\/plain; charset=utf-8\r$/m);
    expect(raw).toMatch(/^Content-Type: text\/html; charset=utf-8\r$/m);

    const emails = addresses(200, 'lat');
    const answers = await registerAll(emails);
    expect(answers.every((a) => a.status === 201)).toBe(true);
    await allArrive(emails, 30_000);
    const at = new Map(mailsTo(new Set(emails)).map((m) => [m.to, m.at]));
    const latencies = answers.map((a) => Math.max(0, at.get(a.email)! - a.at)).sort((a, b) => a - b);
    const p = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]!;
    console.log(
      `welcome email after 201, 200 registrations: p50 ${p(0.5).toFixed(0)} ms, p99 ${p(0.99).toFixed(0)} ms`,
    );
    expect(p(0.5)).toBeLessThan(2000);
    expect(doubled(mailsTo(new Set(emails)))).toEqual([]);
  });

  it("an address whose local part holds RFC 5322 atext (& = / ~ ' { } …) registers, logs in and gets its welcome mail", async () => {
    // refused with 400 before (zod's own pattern took only letters, digits and _'+-.); an outside check
    const local = `o'n&co=x/y~z{w}|a#b$c%d!e?f^g*h\`i.${tenant}`;
    const address = `${local}@Example.com`;
    const registered = await api('POST', '/v1/members', {
      tenant,
      body: { email: address, name: 'Atext', password: 'correct horse battery' },
    });
    expect(registered.status, JSON.stringify(registered.json)).toBe(201);
    expect((registered.json as { email: string }).email).toBe(address.toLowerCase());
    const login = await api('POST', '/v1/auth/login', {
      tenant,
      body: { email: address, password: 'correct horse battery' },
    });
    expect(login.status).toBe(200);
    const to = address.toLowerCase();
    await allArrive([to], 10_000);
    const [mail] = mailsTo(to);
    // through the SMTP envelope and into the header as it is, laid out by mime-message.ts
    const id = /^<([^@>]+)@shardgate\.local>$/.exec(mail!.messageId)?.[1];
    const raw = readFileSync(join(MAIL_DIR, mail!.file), 'utf8');
    expect(raw).toContain(`boundary="${mailBoundary(id!)}"`);
    expect(raw).toContain(`\r\nTo: ${to}\r\n`);
  });

  it('RabbitMQ frozen: 100 registrations answer 201; after it resumes exactly 100 emails, no duplicates', async () => {
    await quiet();
    const emails = addresses(100, 'mq');
    const workerMetrics = async () =>
      (
        await fetch(`${workerUrl}/metrics`, {
          signal: AbortSignal.timeout(15_000),
        })
      ).text();
    // a scrape while RabbitMQ answers has the queue depths
    expect(await workerMetrics()).toMatch(/^shardgate_mail_queue_messages\{queue="shardgate\.mail\.dead"/m);
    signalGroup(topology.rabbitmq.name, 'SIGSTOP');
    let answers: { status: number }[] = [];
    try {
      answers = await registerAll(emails);
      await new Promise((r) => setTimeout(r, 2000));
      expect(mailsTo(new Set(emails)).length).toBe(0);
      // the worker's queue depths cannot be read now: absent, not their last values
      const metrics = await workerMetrics();
      expect(metrics).toContain('# TYPE shardgate_mail_queue_messages gauge');
      expect(metrics).not.toMatch(/^shardgate_mail_queue_messages\{/m);
      // how late the mail is: the oldest due row has waited since before the 2 s pause
      const oldest = metricValue(metrics, 'shardgate_outbox_oldest_unsent_seconds', { shard: SHARD });
      expect(oldest).toBeGreaterThanOrEqual(2);
      expect(metricValue(metrics, 'shardgate_outbox_backlog', { shard: SHARD })).toBeGreaterThan(0);
    } finally {
      signalGroup(topology.rabbitmq.name, 'SIGCONT');
    }
    expect(answers.filter((a) => a.status !== 201)).toEqual([]);
    await allArrive(emails, 60_000);
    // published: no row waits long any more
    await waitFor(async () => (await workerCounter('outbox_oldest_unsent_seconds', { shard: SHARD })) < 1, {
      what: 'the oldest unsent row to be published',
    });
    await new Promise((r) => setTimeout(r, 2000));
    const mails = mailsTo(new Set(emails));
    expect(mails.length).toBe(100);
    expect(doubled(mails)).toEqual([]);
  });

  // 30 s: longer than the worker's 4 attempts last against a frozen server (about 20 s of retry
  // delays and greeting or socket timeouts, for a few mails that need not wait for a session);
  // an outage must not use them up and dead-letter the mails
  it('SMTP sink frozen for 30 s during 12 registrations: all 12 arrive afterwards, none twice', async () => {
    await quiet();
    const emails = addresses(12, 'smtp');
    signalGroup(topology.smtp.name, 'SIGSTOP');
    const frozenAt = Date.now();
    try {
      const answers = await registerAll(emails);
      expect(answers.every((a) => a.status === 201)).toBe(true);
      // mails the worker took and waits on the frozen sink with: in no queue's count, but shown
      const inFlight = async () =>
        Number(
          /^shardgate_mail_in_flight(?:\{[^}]*\})? (\d+)/m.exec(
            await (await fetch(`${workerUrl}/metrics`)).text(),
          )?.[1] ?? Number.NaN,
        );
      await waitFor(async () => (await inFlight()) > 0, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'shardgate_mail_in_flight above 0 while the sink is frozen',
      });
      await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - frozenAt))));
    } finally {
      signalGroup(topology.smtp.name, 'SIGCONT');
    }
    await allArrive(emails, 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    const mails = mailsTo(new Set(emails));
    expect(mails.length).toBe(12);
    expect(doubled(mails)).toEqual([]);
  });

  it('a server that takes a mail and answers its final dot late (past the 5 s socket timeout) gets it once', async () => {
    // before: the worker gave up on the answer after 5 s, cleared the delivery mark and sent the
    // mail again, every attempt stored by the server (an outside check: 16 mails twice)
    await quiet();
    const emails = addresses(3, 'slowdot');
    const slow = join(MAIL_DIR, '.slow');
    writeFileSync(slow, emails.map((e) => `${e} 7000`).join('\n'));
    try {
      await new Promise((r) => setTimeout(r, 400)); // the sink re-reads its lists every 250 ms
      const answers = await registerAll(emails);
      expect(answers.every((a) => a.status === 201)).toBe(true);
      await allArrive(emails, 30_000);
      // the answers come 7 s after each dot; a retry would come after them and store another copy
      await new Promise((r) => setTimeout(r, 12_000));
    } finally {
      rmSync(slow, { force: true });
    }
    const mails = mailsTo(new Set(emails));
    expect(mails.length).toBe(3);
    expect(doubled(mails)).toEqual([]);
  });

  it('the worker SIGKILLed mid-batch and restarted: no email lost; a mail sent again only from the dots-to-COMMIT gap, as the same message', async () => {
    await quiet();
    const emails = addresses(60, 'kill');
    const registering = registerAll(emails);
    await waitFor(() => mailsTo(new Set(emails)).length >= 5, {
      timeoutMs: 20_000,
      what: 'the first emails',
    });
    const worker = pid(topology.worker.name);
    signalGroup(topology.worker.name, 'SIGKILL');
    await waitFor(() => !isAlive(worker), { what: 'worker gone' });
    const answers = await registering;
    expect(answers.every((a) => a.status === 201)).toBe(true);
    execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    await allArrive(emails, 60_000);
    await new Promise((r) => setTimeout(r, 2000));
    const mails = mailsTo(new Set(emails));
    // none lost: every address got its mail
    expect(new Set(mails.map((m) => m.to)).size).toBe(60);
    // SMTP has no idempotent submission: a kill between a batch's final dots and its durable
    // COMMIT (a few ms; docs/operations.md, "Email") sends that batch again after the restart.
    // Only that gap: at most one batch (8 mails) twice, each copy the same message (its Message-ID
    // carries the outbox id, so a receiver can drop it). CI once saw 1 of 60 so; most kills miss
    // the gap.
    const again = doubled(mails);
    expect(mails.length - 60).toBe(again.length);
    expect(again.length).toBeLessThanOrEqual(8);
    for (const to of again) {
      const ids = new Set(mails.filter((m) => m.to === to).map((m) => m.messageId));
      expect([to, ids.size]).toEqual([to, 1]);
    }
  });

  it('a poison message is dead-lettered after the configured attempts and does not block others', async () => {
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createConfirmChannel();
      const before = (await ch.checkQueue(DEAD_QUEUE)).messageCount;
      const poisonId = `poison-${tenant}`;
      ch.publish(MAIL_EXCHANGE, MAIL_ROUTING_KEY, Buffer.from('{"not":"a mail"}'), {
        persistent: true,
        messageId: poisonId,
      });
      await ch.waitForConfirms();

      // others keep flowing while the poison message retries
      const [other] = addresses(1, 'after-poison');
      await registerAll([other!]);
      await allArrive([other!], 2000);

      await waitFor(async () => (await ch.checkQueue(DEAD_QUEUE)).messageCount > before, {
        timeoutMs: 30_000,
        intervalMs: 250,
        what: 'the poison message in the dead-letter queue',
      });
      // it went through every attempt (the stack's worker allows 4)
      expect((await takeDeadLetter(ch, poisonId))?.properties.headers?.['x-attempts']).toBe(4);
      await ch.close();
    } finally {
      await conn.close();
    }
  });

  it('a recipient the SMTP client refuses (CR LF in it) uses its attempts and is dead-lettered, not retried as an outage', async () => {
    // before: nodemailer's "Invalid recipient" had no SMTP reply code, so it counted as an outage
    // and the mail was retried for about a day (an outside check, with a row put in by hand:
    // the API refuses such an address)
    const master = node(SHARD, 'master').port;
    const evil = `evil-${tenant}@example.com`;
    const to = `inj-${tenant}@example.com\r\nBcc: ${evil}`;
    const id = outboxId();
    await insertOutboxRow(master, { id, tenant, to, delivered: false });
    await publishMails([[id, to]]);
    const conn = await amqp.connect(AMQP_URL);
    try {
      const ch = await conn.createChannel();
      const dead = await waitFor(() => takeDeadLetter(ch, id), {
        timeoutMs: 30_000,
        intervalMs: 500,
        what: 'the mail with the refused recipient in the dead-letter queue',
      });
      expect([
        dead.properties.headers?.['x-attempts'],
        dead.properties.headers?.['x-outage-retries'],
      ]).toEqual([4, 0]);
      expect(String(dead.properties.headers?.['x-last-error'])).toContain('Invalid recipient');
      await ch.close();
    } finally {
      await conn.close();
    }
    expect(mailsTo(evil)).toEqual([]);
    expect((await deliveredMarks(master, [id]))[id]).toBe(false);
  });

  it('a message relayed under a shard id that is gone since (a second id of the same database, deleted) is mailed once', async () => {
    // before: the worker took the unknown shard for an outage and retried the mail for a day
    // (an outside check: 225 mails stuck after such an id was deleted)
    await quiet();
    const master = node(SHARD, 'master').port;
    const [to] = addresses(1, 'goneid');
    const id = outboxId();
    await insertOutboxRow(master, { id, tenant, to: to!, delivered: false });
    const retriesBefore = await workerCounter('mail_retries_total');
    await publishMails([[id, to!]], { shard: `gone-${tenant}` });
    await allArrive([to!], 5000);
    // no retry tier in between: the worker sent no message to one
    expect(await workerCounter('mail_retries_total')).toBe(retriesBefore);
    await waitFor(async () => (await deliveredMarks(master, [id]))[id] === true, {
      timeoutMs: 3000,
      what: 'the row marked delivered',
    });
    await new Promise((r) => setTimeout(r, 1500));
    expect(mailsTo(to!)).toHaveLength(1);
  });

  it('a message whose outbox row the relay still holds for a moment is mailed once the row is free, without a retry', async () => {
    await quiet();
    const master = node(SHARD, 'master').port;
    const [to] = addresses(1, 'held');
    const id = outboxId();
    await insertOutboxRow(master, { id, tenant, to: to!, delivered: false });
    // the relay's claim transaction keeps its rows locked until just after the broker confirmed
    const holder = await rootConnection(master);
    try {
      await holder.beginTransaction();
      await holder.query('SELECT id FROM outbox WHERE id = ? FOR UPDATE', [id]);
      const retriesBefore = await workerCounter('mail_retries_total');
      await publishMails([[id, to!]]);
      await new Promise((r) => setTimeout(r, 200));
      await holder.commit();
      await allArrive([to!], 3000);
      // the worker waited for the row instead of sending the message to a retry tier
      expect(await workerCounter('mail_retries_total')).toBe(retriesBefore);
      expect(mailsTo(to!)).toHaveLength(1);
    } finally {
      await holder.rollback().catch(() => {});
      await holder.end();
    }
  });

  it.each([
    'one message per mail',
    'one batch message, as the relay sends them',
  ])('messages published together (%s): a free row is mailed, a row held by another delivery waits for it, a delivered or vanished one follows its record', async (how) => {
    await quiet();
    const master = node(SHARD, 'master').port;
    const [free, lockedThenFree, lockedThenDelivered, delivered, noRow] = addresses(5, 'batch');
    const ids = {
      free: outboxId(),
      lockedThenFree: outboxId(),
      lockedThenDelivered: outboxId(),
      delivered: outboxId(),
      noRow: outboxId(),
    };
    await insertOutboxRow(master, { id: ids.free, tenant, to: free!, delivered: false });
    await insertOutboxRow(master, { id: ids.lockedThenFree, tenant, to: lockedThenFree!, delivered: false });
    await insertOutboxRow(master, {
      id: ids.lockedThenDelivered,
      tenant,
      to: lockedThenDelivered!,
      delivered: false,
    });
    await insertOutboxRow(master, { id: ids.delivered, tenant, to: delivered!, delivered: true });
    const duplicatesBefore = await workerCounter('mail_duplicates_skipped_total');

    // "another delivery" holds two of the rows for longer than the worker's 1 s lock wait
    const holder = await rootConnection(master);
    try {
      await holder.beginTransaction();
      await holder.query('SELECT id FROM outbox WHERE id IN (?) FOR UPDATE', [
        [ids.lockedThenFree, ids.lockedThenDelivered],
      ]);
      const publishedAt = await publishMails(
        [
          [ids.free, free!],
          [ids.lockedThenFree, lockedThenFree!],
          [ids.lockedThenDelivered, lockedThenDelivered!],
          [ids.delivered, delivered!],
          [ids.noRow, noRow!],
        ],
        { batch: how !== 'one message per mail' },
      );
      // the free row and the id without a row go out without the held ones
      await allArrive([free!, noRow!], 5000);
      await new Promise((r) => setTimeout(r, Math.max(0, 1800 - (Date.now() - publishedAt))));
      expect(mailsTo(new Set([lockedThenFree!, lockedThenDelivered!]))).toEqual([]);
      // the holder delivers one of them and lets go of both
      await holder.query('UPDATE outbox SET delivered_at = NOW(3) WHERE id = ?', [ids.lockedThenDelivered]);
      await holder.commit();
    } finally {
      await holder.rollback().catch(() => {});
      await holder.end();
    }

    // on its retry the released row is mailed; the one the holder delivered is not
    await allArrive([lockedThenFree!], 15_000);
    await new Promise((r) => setTimeout(r, 2000));
    const mails = mailsTo(new Set([free!, lockedThenFree!, lockedThenDelivered!, delivered!, noRow!]));
    expect(mails.map((m) => m.to).sort()).toEqual([free!, lockedThenFree!, noRow!].sort());
    const marks = await rootQuery<{ id: string; delivered: number }>(
      master,
      'SELECT id, delivered_at IS NOT NULL AS delivered FROM outbox WHERE id IN (?)',
      [[ids.free, ids.lockedThenFree]],
    );
    expect(marks.map((r) => Number(r.delivered))).toEqual([1, 1]);
    expect(await workerCounter('mail_duplicates_skipped_total')).toBeGreaterThanOrEqual(duplicatesBefore + 2);
  });

  it('every connection of the outbox pool runs READ COMMITTED with a 1 s lock wait', async () => {
    const pool = createOutboxPool({
      host: topology.host,
      port: node(SHARD, 'master').port,
      database: topology.database,
      user: 'root',
      password: '',
      connectionLimit: 3,
    });
    try {
      const conns = await Promise.all([pool.getConnection(), pool.getConnection(), pool.getConnection()]);
      expect(new Set(conns.map((c) => c.threadId)).size).toBe(3);
      for (const c of conns) {
        await c.beginTransaction();
        // a locking read that finds nothing: starts the InnoDB transaction, locks no row
        await c.query("SELECT id FROM outbox WHERE id = 'no-such-outbox-row' FOR UPDATE");
        // information_schema.innodb_trx is a snapshot refreshed at most every 0.1 s
        let level: unknown;
        await waitFor(
          async () => {
            const [trx] = await c.query<RowDataPacket[]>(
              'SELECT trx_isolation_level AS level FROM information_schema.innodb_trx WHERE trx_mysql_thread_id = CONNECTION_ID()',
            );
            level = trx[0]?.level;
            return level !== undefined;
          },
          { timeoutMs: 2000, intervalMs: 150, what: `the transaction of connection ${c.threadId}` },
        );
        const [wait] = await c.query<RowDataPacket[]>('SELECT @@SESSION.innodb_lock_wait_timeout AS s');
        expect(level).toBe('READ COMMITTED');
        expect(Number(wait[0]?.s)).toBe(1);
        await c.rollback();
      }
      for (const c of conns) c.release();
    } finally {
      await pool.end();
    }
  });

  it('exposes per-target delivery and publish counters and the outbox backlog on the worker /metrics', async () => {
    const text = await (await fetch(`${workerUrl}/metrics`)).text();
    // only there: another path is 404, not the metrics again
    expect((await fetch(`${workerUrl}/health`)).status).toBe(404);
    for (const line of [
      /^shardgate_mail_publish_success_total\{[^}]*target="rabbitmq"[^}]*\} \d+/m,
      /^shardgate_mail_delivery_success_total\{[^}]*target="smtp"[^}]*\} \d+/m,
      /^shardgate_mail_retries_total\{[^}]*target="rabbitmq"[^}]*\} \d+/m,
      /^shardgate_mail_dead_lettered_total\{[^}]*target="rabbitmq"[^}]*\} \d+/m,
      /^shardgate_outbox_backlog\{[^}]*shard="shard-2"[^}]*\} \d+/m,
      // the live config as the instances export it (an outside check: the worker had none, while
      // it rejected keys in its log)
      /^shardgate_config_rejected_keys\{[^}]*\} \d+/m,
      /^shardgate_config_source_connected\{[^}]*\} 1$/m,
      /^shardgate_config_revision\{[^}]*\} \d+/m,
    ]) {
      expect(text).toMatch(line);
    }
  });

  it("lists the worker's own breakers (RabbitMQ, each shard master's outbox) at /health/circuit-breakers", async () => {
    const r = await fetch(`${workerUrl}/health/circuit-breakers`);
    expect(r.status).toBe(200);
    const body = (await r.json()) as { configRevision: number; breakers: { name: string; state: string }[] };
    expect(typeof body.configRevision).toBe('number');
    const names = body.breakers.map((b) => b.name);
    for (const name of ['rabbitmq', 'mysql-master:shard-1', 'mysql-master:shard-2'])
      expect(names).toContain(name);
  });

  it('answers /health/config: a value put in etcd that the worker rejects is listed with its reason, the last good one applied', async () => {
    const key = 'breakers/rabbitmq/half_open_max_calls';
    const restore = etcdOverride(key, 'abc');
    try {
      type Health = {
        rejected: { key: string; reason: string }[];
        applied: { breakers: { rabbitmq: { half_open_max_calls: number } } };
      };
      const body = await waitFor(
        async () => {
          const h = (await (await fetch(`${workerUrl}/health/config`)).json()) as Health;
          return h.rejected.some((r) => r.key === key) ? h : undefined;
        },
        { timeoutMs: 5000, intervalMs: 100, what: `the worker lists ${key} as rejected` },
      );
      expect(body.rejected.find((r) => r.key === key)?.reason).toContain('whole number');
      expect(typeof body.applied.breakers.rabbitmq.half_open_max_calls).toBe('number');
    } finally {
      restore();
    }
  });
});

describe('outbox retention (mail/outbox_retention_hours, live from etcd)', () => {
  const HOUR_MS = 3_600_000;
  const restores: (() => void)[] = [];
  afterEach(() => {
    while (restores.length > 0) restores.pop()!();
  });

  /** the worker's metric with this shard label (any labels without one) */
  const workerMetric = (name: string, shard?: string) =>
    scrapeMetric(workerUrl, `shardgate_${name}`, shard ? { shard } : {});

  async function present(master: number, ids: string[]): Promise<string[]> {
    const rows = await rootQuery<{ id: string }>(
      master,
      'SELECT id FROM outbox WHERE id IN (?) ORDER BY id',
      [ids],
    );
    return rows.map((r) => r.id).sort();
  }

  it('lowered by etcdctl put, the worker deletes the rows delivered and created longer ago at once; younger, undelivered and late-delivered rows stay; an invalid value leaves the last good one in force', async () => {
    const master = node(SHARD, 'master').port;
    const [a, b, c, d, e] = addresses(5, 'retention');
    const now = Date.now();
    const ids = {
      old: outboxId(now - 3 * HOUR_MS),
      oldUndelivered: outboxId(now - 3 * HOUR_MS),
      oldDeliveredLate: outboxId(now - 3 * HOUR_MS),
      young: outboxId(now - HOUR_MS / 2),
    };
    await insertOutboxRow(master, { id: ids.old, tenant, to: a!, delivered: true, deliveredHoursAgo: 3 });
    await insertOutboxRow(master, { id: ids.oldUndelivered, tenant, to: b!, delivered: false });
    await insertOutboxRow(master, { id: ids.oldDeliveredLate, tenant, to: c!, delivered: true });
    await insertOutboxRow(master, { id: ids.young, tenant, to: d!, delivered: true, deliveredHoursAgo: 0.5 });
    const kept = [ids.oldUndelivered, ids.oldDeliveredLate, ids.young].sort();
    expect(await workerMetric('outbox_retention_hours')).toBe(168);
    expect(await present(master, Object.values(ids))).toEqual(Object.values(ids).sort());
    const purgedBefore = await workerMetric('outbox_purged_total', SHARD);

    restores.push(etcdOverride('mail/outbox_retention_hours', '1'));
    // a round starts as soon as the worker sees the change (its first DELETE takes the oldest
    // rows first: a long-running local stack may hold many older ones, hence the margin)
    await waitFor(async () => (await present(master, Object.values(ids))).length === 3, {
      timeoutMs: 10_000,
      what: 'the old delivered row to be purged',
    });
    expect(await present(master, Object.values(ids))).toEqual(kept);
    expect(await workerMetric('outbox_purged_total', SHARD)).toBeGreaterThanOrEqual(purgedBefore + 1);
    expect(await workerMetric('outbox_retention_hours')).toBe(1);

    // an invalid value: rejected and listed by the instances, the worker keeps 1 hour
    type ConfigHealth = {
      rejected: { key: string; reason: string }[];
      applied: { mail: { outboxRetentionHours: number } };
    };
    const configHealth = async () =>
      (await (await fetch(`${INSTANCES[0]}/health/config`)).json()) as ConfigHealth;
    expect((await configHealth()).applied.mail).toEqual({ outboxRetentionHours: 1 });
    etcdPut('mail/outbox_retention_hours', '-1');
    const rejected = await waitFor(
      async () => (await configHealth()).rejected.find((r) => r.key === 'mail/outbox_retention_hours'),
      { timeoutMs: 2000, what: 'the invalid retention to be listed at /health/config' },
    );
    expect(rejected.reason).toMatch(/^must be a whole number from 0 to 87600/);
    expect((await configHealth()).applied.mail).toEqual({ outboxRetentionHours: 1 });
    expect(await workerMetric('outbox_retention_hours')).toBe(1);

    // a valid value again applies at once: a row delivered 3 h ago goes with 2 hours
    const later = outboxId(now - 3 * HOUR_MS);
    await insertOutboxRow(master, { id: later, tenant, to: e!, delivered: true, deliveredHoursAgo: 3 });
    etcdPut('mail/outbox_retention_hours', '2');
    await waitFor(async () => (await present(master, [later])).length === 0, {
      timeoutMs: 10_000,
      what: 'the row delivered 3 h ago to be purged with a 2 h retention',
    });
    expect(await present(master, Object.values(ids))).toEqual(kept);
    expect(await workerMetric('outbox_retention_hours')).toBe(2);
  });

  it('a redelivered message whose row was purged is acked as a duplicate without a mail; a row missing but younger than the retention is still mailed, and so is an old one while retention is off', async () => {
    await quiet();
    const [purged, youngMissing, oldWhileOff] = addresses(3, 'purged');
    const now = Date.now();
    const ids = {
      purged: outboxId(now - 200 * HOUR_MS),
      youngMissing: outboxId(now),
      oldWhileOff: outboxId(now - 200 * HOUR_MS),
    };
    const duplicatesBefore = await workerCounter('mail_duplicates_skipped_total');
    // the default retention, 168 hours
    await publishMails(
      [
        [ids.purged, purged!],
        [ids.youngMissing, youngMissing!],
      ],
      { batch: true },
    );
    await allArrive([youngMissing!], 5000);
    await waitFor(
      async () => (await workerCounter('mail_duplicates_skipped_total')) >= duplicatesBefore + 1,
      {
        timeoutMs: 5000,
        what: 'the purged row to be counted a duplicate',
      },
    );
    expect(mailsTo(purged!)).toEqual([]);

    // with retention off nothing deletes rows: an id without one is owed its mail, however old
    restores.push(etcdOverride('mail/outbox_retention_hours', '0'));
    await waitFor(async () => (await workerMetric('outbox_retention_hours')) === 0, {
      timeoutMs: 2000,
      what: 'the worker to apply retention 0',
    });
    await publishMails([[ids.oldWhileOff, oldWhileOff!]]);
    await allArrive([oldWhileOff!], 5000);
    await new Promise((r) => setTimeout(r, 1000));
    expect(
      mailsTo(new Set([purged!, youngMissing!, oldWhileOff!]))
        .map((m) => m.to)
        .sort(),
    ).toEqual([youngMissing!, oldWhileOff!].sort());
  });
});
