/**
 * The work queue deleted by hand (`rabbitmqctl delete_queue`, a management UI click): the broker
 * cancels the email worker's subscription, and messages published meanwhile are routed nowhere.
 * Before, the worker kept a channel that got nothing any more and the relay's publishes were
 * confirmed and dropped, their outbox rows marked sent: every later mail was lost until the
 * worker restarted (a review). Now the worker reconnects and declares the topology again, and the
 * relay publishes `mandatory`, so an unroutable message comes back and its rows are claimed
 * again. Checked here: a registration right after the delete still gets its welcome mail, once.
 */
import amqp from 'amqplib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WORK_QUEUE } from '../src/mail/amqp-topology.js';
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
});
