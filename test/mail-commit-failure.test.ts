/**
 * A delivery whose COMMIT fails after its mail's final dot (src/mail/outbox-store.ts
 * DeliveryUnrecordedError, delivery-batcher.ts `x-mail-sent-at`), on the real stack: shard-1's
 * master is set `read_only` while the email worker's delivery sits between its `UPDATE … SET
 * delivered_at` and its COMMIT (a trigger of this test makes that UPDATE last 1.5 s for its
 * tenant only), so the worker's account gets 1290 at COMMIT after the SMTP sink accepted the
 * mail — the point where a full binlog disk makes the COMMIT fail (ER_ERROR_ON_WRITE) or, more
 * often, wait until the call timeout (src/mail/master-pools.test.ts). Once the master is writable
 * again, the retry records the mail without sending it: one .eml, the row marked delivered, the
 * worker's duplicates counter up by one. Before, the retry sent the mail a second time.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { workerUrl } from '../stack/urls.js';
import { api, INSTANCES } from './helpers/api.js';
import { mailsTo } from './helpers/mailbox.js';
import { scrapeMetric } from './helpers/metrics.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const SHARD = 'shard-1';
const master = node(SHARD, 'master').port;
const tenant = uniqueTenantId('mail-commit');
const TRIGGER = `sg_test_slow_mark_${tenant.replace(/[^a-z0-9]/gi, '_')}`.slice(0, 64);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await createTenant(tenant, SHARD);
  // only this tenant's delivery mark is slowed; the relay's claim (sent_at) is not
  await rootQuery(
    master,
    `CREATE TRIGGER \`${TRIGGER}\` BEFORE UPDATE ON outbox FOR EACH ROW
       IF NEW.tenant_id = '${tenant}' AND OLD.delivered_at IS NULL AND NEW.delivered_at IS NOT NULL
       THEN DO SLEEP(1.5); END IF`,
  );
});

afterAll(async () => {
  await rootQuery(master, 'SET GLOBAL read_only = 0');
  await rootQuery(master, `DROP TRIGGER IF EXISTS \`${TRIGGER}\``);
  removeTenant(tenant);
});

describe('a delivery whose COMMIT fails after the final dot', () => {
  it('sends the mail once and records it at the retry', async () => {
    const email = `once-${tenant}@example.com`;
    const failedBefore = await scrapeMetric(workerUrl, 'shardgate_mail_delivery_failed_total');
    const duplicatesBefore = await scrapeMetric(workerUrl, 'shardgate_mail_duplicates_skipped_total');
    const r = await api('POST', '/v1/members', {
      tenant,
      base: INSTANCES[0]!,
      body: { email, name: 'Once', password: 'password-123' },
    });
    expect(r.status).toBe(201);
    // the worker's mark is running, held by the trigger (the process list shows the trigger's
    // statement): the master turns read-only under it
    await waitFor(
      async () =>
        (
          await rootQuery(
            master,
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO = 'DO SLEEP(1.5)'",
          )
        ).length > 0,
      { timeoutMs: 15_000, intervalMs: 10, what: "the worker's delivery mark" },
    );
    try {
      await rootQuery(master, 'SET GLOBAL read_only = 1');
      // the dot went out (the sink wrote the mail), then the COMMIT was refused
      await waitFor(() => mailsTo(email).length === 1, { timeoutMs: 10_000, what: 'the mail' });
      await waitFor(
        async () => (await scrapeMetric(workerUrl, 'shardgate_mail_delivery_failed_total')) > failedBefore,
        { timeoutMs: 10_000, what: 'the failed COMMIT' },
      );
      const [row] = await rootQuery<{ delivered: number }>(
        master,
        'SELECT delivered_at IS NOT NULL AS delivered FROM outbox WHERE tenant_id = ?',
        [tenant],
      );
      expect(Number(row?.delivered)).toBe(0);
    } finally {
      await rootQuery(master, 'SET GLOBAL read_only = 0');
    }
    // the retry (1 s tier) records it
    await waitFor(
      async () => {
        const rows = await rootQuery<{ delivered: number }>(
          master,
          'SELECT delivered_at IS NOT NULL AS delivered FROM outbox WHERE tenant_id = ?',
          [tenant],
        );
        return rows.length === 1 && Number(rows[0]?.delivered) === 1;
      },
      { timeoutMs: 30_000, what: 'the delivery recorded' },
    );
    // recorded as a duplicate (other files' leftover retries may add to the worker's count)
    expect(await scrapeMetric(workerUrl, 'shardgate_mail_duplicates_skipped_total')).toBeGreaterThan(
      duplicatesBefore,
    );
    await sleep(2000); // a second copy would have arrived by now (the retry sends within ms)
    expect(mailsTo(email)).toHaveLength(1);
  });
});
