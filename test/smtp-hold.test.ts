/**
 * The email worker's delivery against the real SMTP sink and shard-2's master, driven directly
 * (OutboxStore.deliverBatch + SmtpSender, test/helpers/outbox.ts), for the moments a whole-stack
 * test can only hit by chance:
 * - the sink keeps nothing of a mail until its final dot: a held mail is not there, a
 *   cancelled one never comes, a released one comes once with the outbox id as Message-ID;
 * - a process SIGKILLed while the sink holds its mails (inside the delivery transaction): no
 *   mail arrives, no row is marked or left locked, and the next delivery sends each once;
 * - a mail the sink refuses after its final dot (552, over its 1 MiB limit): reported refused
 *   and its row unmarked, while the other mail of the batch is marked.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HeldMail } from '../src/mail/smtp-sender.js';
import { mailsTo } from './helpers/mailbox.js';
import {
  type DeliveryRig,
  deliveredMarks,
  deliveryRig,
  insertOutboxRow,
  outboxId,
  welcomeMail,
} from './helpers/outbox.js';
import { node, rootConnection } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('hold');
const SHARD = 'shard-2';
const master = () => node(SHARD, 'master').port;
let rig: DeliveryRig;
let seq = 0;
const address = (label: string) => `${label}-${seq++}-${tenant}@example.com`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  await createTenant(tenant, SHARD);
  rig = deliveryRig();
});
afterAll(async () => {
  await rig?.close();
  removeTenant(tenant);
});

describe('SMTP delivery held until the final dot', () => {
  it('the sink has a held mail only after its release; a cancelled one never', async () => {
    const [a, b] = [address('held'), address('cancelled')];
    const id = outboxId();
    const outcomes = await rig.sender.hold([welcomeMail(id, a, tenant), welcomeMail('X1', b, tenant)]);
    expect(outcomes.map((o) => o instanceof Error)).toEqual([false, false]);
    const [heldA, heldB] = outcomes as HeldMail[];
    await sleep(500);
    expect(mailsTo(new Set([a, b]))).toEqual([]);

    heldB!.cancel();
    const released = heldA!.release();
    await released.written;
    await released.accepted;
    const [mail] = mailsTo(a);
    expect(mail?.messageId).toBe(`<${id}@shardgate.local>`);
    await sleep(500);
    expect(mailsTo(new Set([a, b])).map((m) => m.to)).toEqual([a]);
  });

  it('a process killed while the sink holds its mails sends none and marks none; the next delivery sends each once', async () => {
    const pairs: [string, string][] = [
      [outboxId(), address('killed')],
      [outboxId(), address('killed')],
    ];
    for (const [id, to] of pairs) await insertOutboxRow(master(), { id, tenant, to, delivered: false });
    const child = spawnSync(
      process.execPath,
      ['--import', 'tsx', 'test/fixtures/die-while-held.ts', JSON.stringify(pairs), tenant],
      { encoding: 'utf8', timeout: 60_000 },
    );
    expect(child.stdout.trim()).toBe('held 2');
    expect(child.signal).toBe('SIGKILL');

    const ids = pairs.map(([id]) => id);
    const recipients = new Set(pairs.map(([, to]) => to));
    await sleep(1000);
    expect(mailsTo(recipients)).toEqual([]);
    expect(await deliveredMarks(master(), ids)).toEqual(Object.fromEntries(ids.map((id) => [id, false])));
    // the dead process's transaction is gone: its row locks with it
    const probe = await rootConnection(master());
    try {
      await probe.beginTransaction();
      const [locked] = await probe.query('SELECT id FROM outbox WHERE id IN (?) FOR UPDATE NOWAIT', [ids]);
      expect((locked as unknown[]).length).toBe(2);
      await probe.rollback();
    } finally {
      await probe.end();
    }

    // the broker's redelivery, as the next worker would do it
    const mails = new Map(pairs.map(([id, to]) => [id, welcomeMail(id, to, tenant)]));
    const result = await rig.store.deliverBatch(SHARD, ids, rig.holdFrom(mails));
    expect(result.sent.sort()).toEqual([...ids].sort());
    await waitFor(() => mailsTo(recipients).length === 2, { timeoutMs: 5000, what: 'both mails' });
    await sleep(500);
    expect(
      mailsTo(recipients)
        .map((m) => m.to)
        .sort(),
    ).toEqual([...recipients].sort());
    expect(await deliveredMarks(master(), ids)).toEqual(Object.fromEntries(ids.map((id) => [id, true])));

    // and a copy delivered again is a duplicate: no third mail
    const again = await rig.store.deliverBatch(SHARD, ids, rig.holdFrom(mails));
    expect(again.duplicate.sort()).toEqual([...ids].sort());
    await sleep(500);
    expect(mailsTo(recipients)).toHaveLength(2);
  });

  it('a mail the sink refuses after its final dot is reported refused and left unmarked; the other is marked', async () => {
    const ok = { id: outboxId(), to: address('fine') };
    const big = { id: outboxId(), to: address('too-big') };
    for (const m of [ok, big]) await insertOutboxRow(master(), { ...m, tenant, delivered: false });
    const huge = welcomeMail(big.id, big.to, tenant);
    // past the sink's 1 MiB limit: it reads the whole DATA, then answers 552
    huge.mail = { ...huge.mail, text: 'x'.repeat(1100 * 1024) };
    const mails = new Map([
      [ok.id, welcomeMail(ok.id, ok.to, tenant)],
      [big.id, huge],
    ]);
    const result = await rig.store.deliverBatch(SHARD, [ok.id, big.id], rig.holdFrom(mails));
    expect(result.sent).toEqual([ok.id]);
    expect([...result.refused.keys()]).toEqual([big.id]);
    expect(String(result.refused.get(big.id))).toMatch(/552/);
    expect(await deliveredMarks(master(), [ok.id, big.id])).toEqual({ [ok.id]: true, [big.id]: false });
    await waitFor(() => mailsTo(ok.to).length === 1, { timeoutMs: 5000, what: 'the mail within the limit' });
    expect(mailsTo(big.to)).toEqual([]);
  });
});
