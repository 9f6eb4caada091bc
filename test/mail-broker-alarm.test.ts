/**
 * RabbitMQ in a resource alarm (here its memory watermark set below what it uses, as a full disk
 * or memory would): the broker blocks publishing connections. Before (an outside check), each of
 * the relay's publishes timed out after 2 s, the worker dropped its connection and opened another,
 * which the blocked broker never closed: one more connection and consumer every ~2.5 s for as long
 * as the alarm lasted, no line in the log saying why, and the backlog published again once per
 * abandoned connection when it lifted (1,788 duplicates skipped for 400 mails). Now the worker
 * says it is blocked (log, `shardgate_amqp_publishing_blocked`), keeps its connections (one
 * publishes the outbox, one consumes and is not blocked, one publishes retries), holds the
 * outbox, delivers what is queued, and sends every mail once after. A mail that fails meanwhile
 * has its retry published on the retries connection; before, on the consuming one, which the
 * broker then blocked too: no ack of any mail was read until the alarm ended.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIL_DIR } from '../stack/paths.js';
import { binary } from '../stack/preflight.js';
import { rabbitEnv } from '../stack/rabbitmq.js';
import { topology } from '../stack/topology.js';
import { api } from './helpers/api.js';
import { doubled, mailsTo } from './helpers/mailbox.js';
import { stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('mail-alarm');
const WORKER_METRICS = `http://${topology.host}:9464/metrics`;

function rabbitmqctl(args: string[]): string {
  return execFileSync(binary('rabbitmqctl'), ['-n', topology.rabbitmq.node, ...args], {
    env: { ...process.env, ...rabbitEnv() },
    encoding: 'utf8',
    timeout: 30_000,
  });
}

/**
 * The broker's state (running, blocking, blocked) of each of the email worker's connections, by
 * the role its name ends with (email-worker.ts): `consume`, `outbox`, `retries` (opened at the
 * worker's first retry)
 */
function workerConnectionStates(): Record<string, string> {
  const pid = stackPid('email-worker');
  const ports = new Set(
    execFileSync('ss', ['-Htnp', 'state', 'established', `( dport = :${topology.rabbitmq.port} )`], {
      encoding: 'utf8',
    })
      .split('\n')
      .filter((l) => l.includes(`pid=${pid},`))
      .map((l) => /:(\d+)\s+\S+:\d+\s/.exec(l)?.[1]),
  );
  const states: Record<string, string> = {};
  for (const line of rabbitmqctl(['list_connections', 'peer_port', 'client_properties', 'state', '-q']).split(
    '\n',
  )) {
    const [port, properties, state] = line.trim().split('\t');
    const name = /\{"connection_name","([^"]*)"\}/.exec(properties ?? '')?.[1];
    if (port && ports.has(port) && name && state) states[name.split(' ').at(-1)!] = state;
  }
  return states;
}

/** the email worker's established TCP connections to the broker */
function workerBrokerConnections(): number {
  const pid = stackPid('email-worker');
  if (pid === undefined) throw new Error('email-worker is not running');
  const lines = execFileSync(
    'ss',
    ['-Htnp', 'state', 'established', `( dport = :${topology.rabbitmq.port} )`],
    {
      encoding: 'utf8',
    },
  ).split('\n');
  return lines.filter((l) => l.includes(`pid=${pid},`)).length;
}

/** the sum of a metric's series in the worker's metrics (those with `label`, `name="value"`, when given) */
async function workerMetric(name: string, label?: string): Promise<number> {
  const text = await (await fetch(WORKER_METRICS)).text();
  const lines = text
    .split('\n')
    .filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`))
    .filter((l) => label === undefined || l.slice(0, l.lastIndexOf(' ')).includes(label));
  if (lines.length === 0) throw new Error(`${name} not in the worker's metrics`);
  return lines.reduce((sum, l) => sum + Number(l.split(' ').at(-1)), 0);
}

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
});

afterAll(async () => {
  // whatever happened, the broker's watermark is the stack's again (rabbitmq.conf: 0.2)
  rabbitmqctl(['set_vm_memory_high_watermark', '0.2']);
  await removeTenant(tenant);
});

describe('RabbitMQ blocks publishing (a memory alarm)', () => {
  it('the worker keeps its connections, says it is blocked, holds the outbox, and sends each mail once after', async () => {
    const duplicatesBefore = await workerMetric('shardgate_mail_duplicates_skipped_total');
    const emails = Array.from({ length: 5 }, (_, i) => `alarm-${i}-${tenant}@example.com`);
    try {
      rabbitmqctl(['set_vm_memory_high_watermark', 'absolute', '1']);
      // writes go on: the API writes the outbox, not to RabbitMQ
      for (const email of emails) {
        const res = await api('POST', '/v1/members', {
          tenant,
          body: { email, name: 'Alarm', password: 'correct horse battery staple' },
        });
        expect(res.status).toBe(201);
      }
      // the broker blocks a connection once it publishes: the relay's first publish
      await waitFor(
        async () => (await workerMetric('shardgate_amqp_publishing_blocked', 'connection="outbox"')) === 1,
        {
          timeoutMs: 10_000,
          what: 'the worker to report the broker blocking its publishing',
        },
      );
      // before: a new connection about every 2.5 s
      let most = 0;
      for (let i = 0; i < 8; i++) {
        most = Math.max(most, workerBrokerConnections());
        await new Promise((r) => setTimeout(r, 1000));
      }
      // one consumes, one publishes the outbox, and one the retries of failed mails once there
      // was one (a mail of an earlier test may still be retrying)
      expect(most).toBeGreaterThanOrEqual(2);
      expect(most).toBeLessThanOrEqual(3);
      // the outbox's is blocked; the consuming one `blocking`: read still, acks go on
      const states = workerConnectionStates();
      expect([states.outbox, states.consume]).toEqual(['blocked', 'blocking']);
      // held, not sent
      expect(mailsTo(new Set(emails))).toHaveLength(0);
    } finally {
      rabbitmqctl(['set_vm_memory_high_watermark', '0.2']);
    }
    await waitFor(() => mailsTo(new Set(emails)).length >= emails.length, {
      timeoutMs: 30_000,
      what: 'the welcome mails after the alarm',
    });
    const mails = mailsTo(new Set(emails));
    expect(doubled(mails)).toEqual([]);
    expect(mails).toHaveLength(emails.length);
    expect(await workerMetric('shardgate_amqp_publishing_blocked')).toBe(0);
    // the publish that met the block is confirmed after it, beside the same rows claimed again:
    // at most one copy of each. Before: the backlog again once per abandoned connection
    expect(
      (await workerMetric('shardgate_mail_duplicates_skipped_total')) - duplicatesBefore,
    ).toBeLessThanOrEqual(emails.length);
    expect(workerBrokerConnections()).toBeLessThanOrEqual(3);
  }, 90_000);

  it('a mail failing during the alarm is retried on a connection of its own; the consuming one is never blocked', async () => {
    const later = join(MAIL_DIR, '.later');
    const email = `alarm-later-${tenant}@example.com`;
    const listed = () => {
      try {
        return readFileSync(later, 'utf8');
      } catch {
        return '';
      }
    };
    const unlist = () =>
      writeFileSync(
        later,
        listed()
          .split('\n')
          .filter((l) => l.trim() !== email)
          .join('\n'),
      );
    // the sink answers 451 at RCPT TO: an outage for the worker, retried after 1, 2, 4, 8, 16 s
    // without using the mail's attempts
    writeFileSync(later, `${listed().trimEnd()}\n${email}\n`.trimStart());
    try {
      await new Promise((r) => setTimeout(r, 600)); // the sink re-reads the list every 250 ms
      const failedBefore = await workerMetric('shardgate_mail_delivery_failed_total');
      const res = await api('POST', '/v1/members', {
        tenant,
        body: { email, name: 'Later', password: 'correct horse battery staple' },
      });
      expect(res.status).toBe(201);
      await waitFor(async () => (await workerMetric('shardgate_mail_delivery_failed_total')) > failedBefore, {
        timeoutMs: 10_000,
        what: 'the first delivery of the mail to fail',
      });
      try {
        rabbitmqctl(['set_vm_memory_high_watermark', 'absolute', '1']);
        // a later try fails during the alarm: its retry, published on the retries connection,
        // is held there, and that connection blocked
        await waitFor(() => workerConnectionStates().retries === 'blocked', {
          timeoutMs: 25_000,
          intervalMs: 500,
          what: 'a retry published during the alarm, on the retries connection',
        });
        // said at /metrics (before: only the outbox's connection was, and it published nothing)
        expect(await workerMetric('shardgate_amqp_publishing_blocked', 'connection="retries"')).toBe(1);
        await new Promise((r) => setTimeout(r, 1000));
        // before: the retry went on the consuming connection, which the broker then blocked
        expect(workerConnectionStates().consume).toBe('blocking');
      } finally {
        unlist();
        rabbitmqctl(['set_vm_memory_high_watermark', '0.2']);
      }
      // the held retry is confirmed, and the mail arrives once at its next try
      await waitFor(() => mailsTo(email).length >= 1, {
        timeoutMs: 60_000,
        intervalMs: 500,
        what: 'the mail after the alarm',
      });
      await new Promise((r) => setTimeout(r, 1000));
      expect(mailsTo(email)).toHaveLength(1);
    } finally {
      unlist();
    }
  }, 120_000);
});
