/**
 * Mails the broker drops after confirming them (`rabbitmqctl purge_queue`, as a drop-head or TTL
 * policy would) are re-published by the email worker's lost-mail sweep and arrive once; a
 * dead-lettered mail is not re-published; one redriven by `shardgate-ctl mail redrive` and then
 * lost again is. Before the sweep, such rows stayed published and undelivered for good.
 *
 * Against the real broker and shard-1's MariaDB, but on names of this test's own, so that the
 * stack's email worker (which consumes the stack's queues and relays the outbox of the shards
 * named in etcd) neither takes these mails nor has its queue purged under it: a RabbitMQ vhost
 * (`add_vhost`, deleted at the end) for the whole topology, a database on shard-1's master
 * (migrated from migrations/, dropped at the end) named in a memory config as shard `sweep-1`,
 * and an etcd prefix naming that shard for the CLI. The relay, consumer and sweep are the
 * worker's own classes, wired as src/entry/email-worker.ts wires them; the sweep's passes are
 * called by the test (grace 1 s) instead of every 60 s.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import amqp from 'amqplib';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { findMigrationsFolder } from '../src/db/migrations-folder.js';
import { newId } from '../src/domain/ids.js';
import { AmqpConnection } from '../src/mail/amqp-connection.js';
import { DEAD_QUEUE, WORK_QUEUE } from '../src/mail/amqp-topology.js';
import { LostMailSweep, readyInMailQueues } from '../src/mail/lost-mail-sweep.js';
import { MailConsumer } from '../src/mail/mail-consumer.js';
import { OutboxRelay } from '../src/mail/outbox-relay.js';
import { OutboxStore } from '../src/mail/outbox-store.js';
import { SmtpSender } from '../src/mail/smtp-sender.js';
import { silentLogger } from '../src/observability/logger.js';
import { createPromMetrics } from '../src/observability/prom-metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { binary } from '../stack/preflight.js';
import { rabbitEnv } from '../stack/rabbitmq.js';
import { topology } from '../stack/topology.js';
import { ctl } from './helpers/ctl.js';
import { etcdDelKey, etcdPutKey } from './helpers/etcd.js';
import { mailsTo } from './helpers/mailbox.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { waitFor } from './helpers/wait-for.js';

const tag = randomBytes(4).toString('hex');
const VHOST = `sg-sweep-${tag}`;
const DB = `sg_sweep_${tag}`;
const SHARD = 'sweep-1';
const PREFIX = `/sg-sweep-${tag}/`;
const AMQP = `amqp://guest:guest@${topology.host}:${topology.rabbitmq.port}/${VHOST}`;
const master = () => node('shard-1', 'master').port;
const shardValue = () =>
  JSON.stringify({ master: { host: topology.host, port: master() }, replicas: [], database: DB });

function rabbitmqctl(args: string[]): string {
  return execFileSync(binary('rabbitmqctl'), ['-n', topology.rabbitmq.node, ...args], {
    env: { ...process.env, ...rabbitEnv() },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

let store: OutboxStore;
let config: MemoryConfigStore;
let breakers: BreakerRegistry;
let smtp: SmtpSender;
const open: AmqpConnection[] = [];

function connection(name: string, prefetch?: number): AmqpConnection {
  const c = new AmqpConnection({
    url: AMQP,
    breakers,
    logger: silentLogger,
    name: `sweep-test ${name}`,
    prefetch,
  });
  open.push(c);
  return c;
}

/** a relay (started) and a sweep; the consumer is made by `consume` */
function relayAndSweep(consumer: { deliveries: () => { inFlight: number; taken: number } }) {
  const metrics = createPromMetrics();
  const publisher = connection('outbox');
  const relay = new OutboxRelay({ store, amqp: publisher, logger: silentLogger, metrics, idleMs: 50 });
  const probe = connection('probe');
  const sweep = new LostMailSweep({
    store,
    readyMessages: readyInMailQueues(probe),
    publishingBlockedForMs: () => publisher.blockedForMs(),
    deliveries: () => consumer.deliveries(),
    logger: silentLogger,
    metrics,
    graceSeconds: 1,
    firstPassMs: 3_600_000,
  });
  return { relay, sweep, metrics };
}

function consume(maxAttempts: number): MailConsumer {
  const consumer = new MailConsumer({
    amqp: connection('consume', 16),
    reroutes: connection('retries'),
    store,
    smtp,
    logger: silentLogger,
    metrics: createPromMetrics(),
    maxAttempts,
    maxBatch: 8,
  });
  consumer.start();
  return consumer;
}

/** an unsent welcome row (the relay publishes it) */
async function insertRow(id: string, to: string): Promise<void> {
  await rootQuery(
    master(),
    `INSERT INTO \`${DB}\`.outbox (id, tenant_id, kind, recipient, payload, created_at, available_at)
     VALUES (?, 'sweep', 'welcome', ?, ?, NOW(3), NOW(3))`,
    [id, to, JSON.stringify({ tenantName: 'Sweep', name: 'Reader' })],
  );
}

async function rows(ids: string[]) {
  return rootQuery<{ id: string; sent: number; delivered: number; dead: number; recipient: string }>(
    master(),
    `SELECT id, sent_at IS NOT NULL AS sent, delivered_at IS NOT NULL AS delivered,
            dead_lettered_at IS NOT NULL AS dead, recipient
       FROM \`${DB}\`.outbox WHERE id IN (?) ORDER BY id`,
    [ids],
  );
}

/** messages ready in `queue` of this test's vhost, asked of the broker (passive declare) */
async function depth(queue: string): Promise<number> {
  const c = await amqp.connect(AMQP);
  try {
    const ch = await c.createChannel();
    return (await ch.checkQueue(queue)).messageCount;
  } finally {
    await c.close().catch(() => {});
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  rabbitmqctl(['add_vhost', VHOST]);
  rabbitmqctl(['set_permissions', '-p', VHOST, 'guest', '.*', '.*', '.*']);
  await rootQuery(master(), `CREATE DATABASE \`${DB}\``);
  const conn = await createConnection({ host: topology.host, port: master(), user: 'root', database: DB });
  try {
    await migrate(drizzle(conn), { migrationsFolder: findMigrationsFolder()! });
  } finally {
    await conn.end();
  }
  config = new MemoryConfigStore({ initial: { [`shards/${SHARD}`]: shardValue() } });
  breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createPromMetrics() });
  store = new OutboxStore({ config, breakers, logger: silentLogger, user: 'root', password: () => '' });
  smtp = new SmtpSender({
    url: `smtp://${topology.host}:${topology.smtp.port}`,
    from: 'no-reply@shardgate.local',
  });
  etcdPutKey(`${PREFIX}shards/${SHARD}`, shardValue());
}, 60_000);

afterAll(async () => {
  await Promise.all(open.map((c) => c.close().catch(() => {})));
  smtp?.close();
  await store?.close();
  etcdDelKey(`${PREFIX}shards/${SHARD}`);
  await rootQuery(master(), `DROP DATABASE IF EXISTS \`${DB}\``).catch(() => {});
  try {
    rabbitmqctl(['delete_vhost', VHOST]);
  } catch {
    /* gone already */
  }
}, 60_000);

describe('the lost-mail sweep', () => {
  it('re-publishes mails the broker purged after confirming them; each arrives once, delivered ones are not sent again', async () => {
    // nobody consumes yet: the relay publishes, the broker confirms, the queue is purged
    let deliveries = () => ({ inFlight: 0, taken: 0 });
    const { relay, sweep, metrics } = relayAndSweep({ deliveries: () => deliveries() });
    const lost = Array.from({ length: 20 }, (_, i) => [newId(), `lost-${i}-${tag}@example.com`] as const);
    for (const [id, to] of lost) await insertRow(id, to);
    // a delivered row published as long ago: not sent again
    const done = [newId(), `delivered-${tag}@example.com`] as const;
    await rootQuery(
      master(),
      `INSERT INTO \`${DB}\`.outbox (id, tenant_id, kind, recipient, payload, created_at, available_at, sent_at, delivered_at)
       VALUES (?, 'sweep', 'welcome', ?, '{"tenantName":"Sweep","name":"Reader"}', NOW(3), NOW(3), NOW(3) - INTERVAL 1 HOUR, NOW(3))`,
      [...done],
    );
    relay.start();
    const ids = lost.map(([id]) => id);
    try {
      await waitFor(async () => (await rows(ids)).every((r) => Number(r.sent) === 1), {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'every row published',
      });
      expect(await depth(WORK_QUEUE)).toBeGreaterThan(0);
      rabbitmqctl(['purge_queue', '-p', VHOST, WORK_QUEUE]);
      expect(await depth(WORK_QUEUE)).toBe(0);

      const consumer = consume(4);
      deliveries = () => consumer.deliveries();
      const recipients = new Set(lost.map(([, to]) => to));
      await sleep(1500);
      // nothing arrives on its own: the rows say published, no copy exists
      expect(mailsTo(recipients)).toEqual([]);
      expect(await sweep.pass()).toEqual({ republished: new Map([[SHARD, 20]]) });
      expect((await metrics.render()).body).toContain(
        `shardgate_mail_lost_republished_total{shard="${SHARD}"} 20`,
      );
      await waitFor(async () => (await rows(ids)).every((r) => Number(r.delivered) === 1), {
        timeoutMs: 30_000,
        intervalMs: 200,
        what: 'every lost mail delivered',
      });
      await sleep(1000);
      const got = mailsTo(recipients);
      expect(got.map((m) => m.to).sort()).toEqual([...recipients].sort());
      expect(mailsTo(done[1])).toEqual([]);
      // a second pass finds nothing more
      expect(await sweep.pass()).toEqual({ republished: new Map() });
      await consumer.stop();
    } finally {
      await relay.stop();
    }
  }, 90_000);

  it('does not re-publish a dead-lettered mail; one redriven and then lost is re-published and arrives once', async () => {
    // a recipient nodemailer refuses to send to (angle brackets): the mail's own failure, an
    // attempt; with one attempt allowed it is dead-lettered at once, its row marked
    const id = newId();
    const bad = `<bad-${tag}>@example.com`;
    await insertRow(id, bad);
    const consumer = consume(1);
    const { relay, sweep } = relayAndSweep({ deliveries: () => current.deliveries() });
    let current = consumer;
    relay.start();
    try {
      await waitFor(async () => (await depth(DEAD_QUEUE)) === 1, {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'the mail in the dead-letter queue',
      });
      expect(await rows([id])).toMatchObject([{ sent: 1, delivered: 0, dead: 1 }]);
      await sleep(1200);
      expect(await sweep.pass()).toEqual({ republished: new Map() });
      expect(await rows([id])).toMatchObject([{ sent: 1, delivered: 0, dead: 1 }]);
      await consumer.stop();

      // the mailbox fixed (the address the row is re-published with), the mail redriven by the
      // operator to a work queue nobody consumes, and lost there
      const good = `fixed-${tag}@example.com`;
      await rootQuery(master(), `UPDATE \`${DB}\`.outbox SET recipient = ? WHERE id = ?`, [good, id]);
      const r = ctl(['mail', 'redrive', '--id', id], {
        SHARDGATE_ETCD_PREFIX: PREFIX,
        SHARDGATE_AMQP_URL: AMQP,
        SHARDGATE_DB_USER: 'root',
        SHARDGATE_DB_PASSWORD: '',
      });
      expect(r.stderr).toBe('');
      expect(r.stdout).toMatch(/^moved 1 message\(s\) \(1 mail\(s\)\)/);
      expect(await rows([id])).toMatchObject([{ sent: 1, delivered: 0, dead: 0 }]);
      expect(await depth(WORK_QUEUE)).toBe(1);
      rabbitmqctl(['purge_queue', '-p', VHOST, WORK_QUEUE]);

      current = consume(1);
      await sleep(1200);
      expect(await sweep.pass()).toEqual({ republished: new Map([[SHARD, 1]]) });
      await waitFor(async () => mailsTo(good).length > 0, {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'the redriven and lost mail delivered',
      });
      await sleep(1000);
      expect(mailsTo(good)).toHaveLength(1);
      expect(await rows([id])).toMatchObject([{ delivered: 1 }]);
      await current.stop();
    } finally {
      await relay.stop();
    }
  }, 90_000);
});
