/**
 * The email worker's delivery parts built inside a test process against the local stack: outbox
 * rows written as root on a shard master, and an OutboxStore + SmtpSender on the stack's shard
 * masters and SMTP sink — with the shard map of stack/topology.ts in a memory config instead of
 * etcd, so a test (or a child process it kills) can drive `deliverBatch` itself.
 */
import { MemoryConfigStore } from '../../src/config/memory-config-store.js';
import { newId } from '../../src/domain/ids.js';
import type { MailMessage } from '../../src/mail/mail-message.js';
import { renderMail } from '../../src/mail/mail-templates.js';
import { type HoldMails, OutboxStore } from '../../src/mail/outbox-store.js';
import { type HeldMail, type OutgoingMail, SmtpSender } from '../../src/mail/smtp-sender.js';
import { silentLogger } from '../../src/observability/logger.js';
import { createNoopMetrics } from '../../src/observability/metrics.js';
import { BreakerRegistry } from '../../src/resilience/breaker-registry.js';
import { topology } from '../../stack/topology.js';
import { rootQuery } from './shard-db.js';

/** an outbox id as the API makes them (a ULID: its time tells the worker a purged row from a missing one) */
export function outboxId(now?: number): string {
  return newId(now);
}

/**
 * a welcome outbox row that the relay already published (sent_at set); a delivered one was
 * delivered `deliveredHoursAgo` hours ago by the master's clock (default now)
 */
export async function insertOutboxRow(
  port: number,
  {
    id,
    tenant,
    to,
    delivered,
    deliveredHoursAgo = 0,
  }: { id: string; tenant: string; to: string; delivered: boolean; deliveredHoursAgo?: number },
): Promise<void> {
  await rootQuery(
    port,
    `INSERT INTO outbox (id, tenant_id, kind, recipient, payload, created_at, available_at, sent_at, delivered_at)
     VALUES (?, ?, 'welcome', ?, ?, NOW(3), NOW(3), NOW(3),
             ${delivered ? 'NOW(3) - INTERVAL ? SECOND' : 'NULL'})`,
    [
      id,
      tenant,
      to,
      JSON.stringify({ tenantName: tenant, name: 'Reader' }),
      ...(delivered ? [deliveredHoursAgo * 3600] : []),
    ],
  );
}

/** `delivered_at IS NOT NULL` per outbox id */
export async function deliveredMarks(port: number, ids: string[]): Promise<Record<string, boolean>> {
  const rows = await rootQuery<{ id: string; delivered: number }>(
    port,
    'SELECT id, delivered_at IS NOT NULL AS delivered FROM outbox WHERE id IN (?)',
    [ids],
  );
  return Object.fromEntries(rows.map((r) => [r.id, Number(r.delivered) === 1]));
}

export interface DeliveryRig {
  store: OutboxStore;
  sender: SmtpSender;
  /** a `hold` for deliverBatch: the mails of `mails` by outbox id, errors left out */
  holdFrom(mails: Map<string, OutgoingMail>): HoldMails;
  close(): Promise<void>;
}

export function deliveryRig(): DeliveryRig {
  const config = new MemoryConfigStore({
    initial: Object.fromEntries(
      topology.shards.map((s) => [
        `shards/${s.id}`,
        JSON.stringify({
          master: { host: topology.host, port: s.master.port },
          replicas: s.replicas.map((r) => ({ host: topology.host, port: r.port, weight: 1 })),
          database: topology.database,
        }),
      ]),
    ),
  });
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
  const store = new OutboxStore({ config, breakers, logger: silentLogger, user: 'root', password: () => '' });
  const sender = new SmtpSender({
    url: `smtp://${topology.host}:${topology.smtp.port}`,
    from: 'no-reply@shardgate.local',
  });
  return {
    store,
    sender,
    holdFrom: (mails) => async (ids) => {
      const outcomes = await sender.hold(ids.map((id) => mails.get(id)!));
      return new Map(
        ids.flatMap((id, i) => (outcomes[i] instanceof Error ? [] : [[id, outcomes[i] as HeldMail]])),
      );
    },
    close: async () => {
      sender.close();
      await store.close();
    },
  };
}

/** the welcome mail of `to`, as the worker renders it */
export function welcomeMail(id: string, to: string, tenant: string): OutgoingMail {
  return { to, outboxId: id, mail: renderMail('welcome', { tenantName: tenant, name: 'Reader' }) };
}

/** the relay's message for a welcome row made by insertOutboxRow */
export function welcomeMessage(id: string, to: string, tenant: string, shard: string): MailMessage {
  return {
    outboxId: id,
    shardId: shard,
    tenantId: tenant,
    kind: 'welcome',
    recipient: to,
    payload: { tenantName: tenant, name: 'Reader' },
  };
}
