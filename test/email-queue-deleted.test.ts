/**
 * The work queue deleted by hand (`rabbitmqctl delete_queue`, a management UI click): the broker
 * cancels the email worker's subscription, and messages published meanwhile are routed nowhere.
 * Before, the worker kept a channel that got nothing any more and the relay's publishes were
 * confirmed and dropped, their outbox rows marked sent: every later mail was lost until the
 * worker restarted (a review). Now the worker reconnects and declares the topology again, and the
 * relay publishes `mandatory`, so an unroutable message comes back and its rows are claimed
 * again. Checked here: a registration right after the delete still gets its welcome mail, once.
 * A retry tier deleted by hand: a mail rerouted to it came back (mandatory), is requeued, and the
 * worker reconnects and declares the tier again; before, the broker confirmed the reroute, the
 * original was acked and the mail was gone. Checked with a mailbox the sink refuses (550): the
 * mail still ends in the dead-letter queue after its attempts.
 */
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEAD_QUEUE, WORK_QUEUE } from '../src/mail/amqp-topology.js';
import { retryDelayMs, retryQueueName } from '../src/mail/retry-tiers.js';
import { MAIL_DIR } from '../stack/paths.js';
import { api } from './helpers/api.js';
import { mailsTo } from './helpers/mailbox.js';
import { AMQP_URL } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('mail-queue');

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
});
afterAll(() => removeTenant(tenant));

describe('the mail work queue deleted by hand', () => {
  it('is declared again, and mail registered right after the delete arrives once', async () => {
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createChannel();
      ch.on('error', () => {});
      // deleted once empty (a quorum queue takes no `ifEmpty`): no other test's mail goes with it
      await waitFor(async () => (await ch.checkQueue(WORK_QUEUE)).messageCount === 0, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: 'the work queue empty',
      });
      await ch.deleteQueue(WORK_QUEUE);
      const email = `queue-deleted-${Date.now()}@example.com`;
      const created = await api('POST', '/v1/members', {
        tenant,
        body: { email, name: 'Queue Deleted', password: 'correct horse battery' },
      });
      expect(created.status).toBe(201);
      await waitFor(async () => mailsTo(email).length > 0, {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'the welcome mail of a registration made after the work queue was deleted',
      });
      // the queue is back (declared by the worker's new connection), and nothing came twice
      await ch.checkQueue(WORK_QUEUE);
      await new Promise((r) => setTimeout(r, 1000));
      expect(mailsTo(email)).toHaveLength(1);
    } finally {
      await connection.close().catch(() => {});
    }
  });

  it('a mail rerouted to a retry tier deleted by hand is not lost: it ends in the dead-letter queue', async () => {
    const refuse = join(MAIL_DIR, '.refuse');
    const email = `tier-deleted-${Date.now()}@example.com`;
    let before = '';
    try {
      before = readFileSync(refuse, 'utf8');
    } catch {
      /* no list yet */
    }
    appendFileSync(refuse, `\n${email}\n`);
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createChannel();
      ch.on('error', () => {});
      // the tier of a first failed attempt
      const tier = retryQueueName(retryDelayMs(1));
      await waitFor(async () => (await ch.checkQueue(tier)).messageCount === 0, {
        timeoutMs: 20_000,
        intervalMs: 100,
        what: `${tier} empty`,
      });
      await ch.deleteQueue(tier);
      // the sink re-reads its list every 250 ms
      await new Promise((r) => setTimeout(r, 600));
      const created = await api('POST', '/v1/members', {
        tenant,
        body: { email, name: 'Tier Deleted', password: 'correct horse battery' },
      });
      expect(created.status).toBe(201);
      let found = false;
      await waitFor(
        async () => {
          // the dead letters are scanned, ours acked, the others left for the broker to put back
          const scan = await connection.createChannel();
          try {
            for (let i = 0; i < 1000 && !found; i++) {
              const m = await scan.get(DEAD_QUEUE, { noAck: false });
              if (!m) break;
              if (m.content.toString().includes(email)) {
                scan.ack(m);
                found = true;
              }
            }
          } finally {
            await scan.close().catch(() => {});
          }
          return found;
        },
        { timeoutMs: 40_000, intervalMs: 500, what: 'the refused mail in the dead-letter queue' },
      );
      await ch.checkQueue(tier);
    } finally {
      writeFileSync(refuse, before);
      await connection.close().catch(() => {});
    }
  });
});
