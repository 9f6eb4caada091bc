/**
 * RabbitMQ SIGKILLed while mails wait in the retry tiers (the SMTP sink is down, so every
 * delivery fails and is rerouted to a tier): after `stack up` every mail arrives, none twice.
 *
 * The tiers dead-letter back to the work queue at least once (src/mail/amqp-topology.ts). With
 * the quorum queues' default, at-most-once, a restarted broker dropped the mails whose delay had
 * run out while it was down whenever the tiers came up before the work queue's leader was known
 * ("leader not known. Command is dropped" in its log): in an outside check, 9 of 9 and 10 of 20
 * mails in two of four such restarts, with every queue, the dead letters included, empty
 * afterwards. Whether a restart loses them depends on the order in which the broker recovers
 * its queues: three runs of this test with at-most-once tiers passed. So it guards the outcome
 * (nothing lost, nothing doubled across a broker crash), not that cause.
 *
 * Also: a deployment upgraded from a version with at-most-once tiers (queues named like their
 * routing keys) has them unbound and deleted by the worker.
 *
 * Restarts RabbitMQ, the SMTP sink and the email worker (`stack up`, 10–30 s); leaves the stack
 * healthy.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAIL_EXCHANGE, MAIL_ROUTING_KEY, RETRY_EXCHANGE, WORK_QUEUE } from '../src/mail/amqp-topology.js';
import { RETRY_DELAYS_MS, retryQueueName, retryRoutingKey } from '../src/mail/retry-tiers.js';
import { topology } from '../stack/topology.js';
import { api } from './helpers/api.js';
import { doubled, mailsTo } from './helpers/mailbox.js';
import { AMQP_URL, stackCli, stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('broker-crash');
const MAILS = 20;
const UP_TIMEOUT_MS = 300_000;

/** messages in the work queue and in each retry tier, by delay */
async function depths(): Promise<{ work: number; tiers: Map<number, number> }> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const work = (await ch.checkQueue(WORK_QUEUE)).messageCount;
    const tiers = new Map<number, number>();
    for (const delay of RETRY_DELAYS_MS)
      tiers.set(delay, (await ch.checkQueue(retryQueueName(delay))).messageCount);
    return { work, tiers };
  } finally {
    await conn.close();
  }
}

function kill(name: string): void {
  const pid = stackPid(name);
  if (pid === undefined) throw new Error(`${name} is not running`);
  process.kill(pid, 'SIGKILL');
}

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
});

afterAll(() => {
  // whatever a failed test left dead comes back; the suite goes on against a healthy stack
  stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
  removeTenant(tenant);
}, UP_TIMEOUT_MS);

describe('RabbitMQ killed with mails in the retry tiers', () => {
  it(
    'delivers every mail exactly once after the broker and the SMTP server are back',
    async () => {
      const emails = Array.from({ length: MAILS }, (_, i) => `crash-${i}-${tenant}@example.com`);
      // refused connections: each delivery fails at once and goes to a retry tier
      kill(topology.smtp.name);
      for (const email of emails) {
        const r = await api('POST', '/v1/members', {
          tenant,
          body: { email, name: 'crash test', password: 'correct horse battery' },
        });
        expect(r.status, email).toBe(201);
      }
      // every mail parked in a tier, none in the work queue or on its way
      let parked = { work: -1, tiers: new Map<number, number>() };
      await waitFor(
        async () => {
          parked = await depths();
          const inTiers = [...parked.tiers.values()].reduce((a, b) => a + b, 0);
          return parked.work === 0 && inTiers >= MAILS;
        },
        { timeoutMs: 60_000, intervalMs: 50, what: `${MAILS} mails in the retry tiers` },
      );
      kill(topology.rabbitmq.name);
      // down until the delay of every parked mail has run out: they all leave their tier at boot
      const longest = Math.max(...[...parked.tiers].filter(([, n]) => n > 0).map(([delay]) => delay));
      await new Promise((r) => setTimeout(r, longest + 1000));
      stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });

      const set = new Set(emails);
      await waitFor(() => new Set(mailsTo(set).map((m) => m.to)).size === MAILS, {
        timeoutMs: 150_000,
        intervalMs: 250,
        what: `${MAILS} welcome mails after the restart (${[...parked.tiers].map(([d, n]) => `${n} in ${d / 1000}s`).join(', ')})`,
      });
      // a copy still on its way would show up as a second mail
      await new Promise((r) => setTimeout(r, 3000));
      expect(doubled(mailsTo(set))).toEqual([]);
      expect(mailsTo(set)).toHaveLength(MAILS);
    },
    UP_TIMEOUT_MS + 240_000,
  );

  it(
    'retires the at-most-once tiers of an older version: unbound, then deleted',
    async () => {
      const legacy = retryRoutingKey(RETRY_DELAYS_MS[0]);
      const conn = await amqp.connect(AMQP_URL);
      try {
        const ch = await conn.createChannel();
        // as the older version declared it: named like its routing key, at-most-once
        await ch.assertQueue(legacy, {
          durable: true,
          arguments: {
            'x-queue-type': 'quorum',
            'x-message-ttl': RETRY_DELAYS_MS[0],
            'x-dead-letter-exchange': MAIL_EXCHANGE,
            'x-dead-letter-routing-key': MAIL_ROUTING_KEY,
          },
        });
        await ch.bindQueue(legacy, RETRY_EXCHANGE, legacy);
      } finally {
        await conn.close();
      }
      // the worker declares its topology when it connects
      kill('email-worker');
      stackCli(['up'], { timeoutMs: UP_TIMEOUT_MS });
      await waitFor(
        async () => {
          const c = await amqp.connect(AMQP_URL);
          try {
            const ch = await c.createChannel();
            ch.on('error', () => {});
            await ch.checkQueue(legacy);
            return false;
          } catch (error) {
            return (error as { code?: number }).code === 404;
          } finally {
            await c.close().catch(() => {});
          }
        },
        { timeoutMs: 30_000, intervalMs: 200, what: `${legacy} deleted by the restarted worker` },
      );
    },
    UP_TIMEOUT_MS,
  );
});
