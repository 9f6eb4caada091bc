/**
 * Instances whose wall clocks disagree (an outside check under libfaketime). Two API instances
 * from source beside the stack: one whose wall clock runs 5 minutes ahead (libfaketime
 * `FAKETIME=+5m`, its monotonic clock left alone), one on the real clock. The times a write
 * stores are the database server's (WriteTransaction.now), so
 * - a welcome mail written through the instance ahead is due at once (its outbox row's
 *   `available_at` <= the master's NOW(3)) and delivered promptly; it was held back 5 minutes;
 * - a loan borrowed on the instance ahead and returned on the real-clock one ends after it began
 *   (`returnedAt >= borrowedAt` in the answer, the row and the mail); it ended 298 s before;
 * - a token of the instance ahead, refused by the real-clock one (iat 300 s in the future, over
 *   the 60 s leeway), is counted by reason (`auth_token_refusals_total{reason="iat_in_future"}`).
 * - a keyed write retried on an instance a day ahead (or behind) of the first one's is answered
 *   from the key, not applied again: the key's 24 h retention is judged on the master's clock.
 * The stack's processes and clocks are left alone. libfaketime is Debian's `faketime` package
 * (.ci/run installs it): without it this test fails, it does not skip.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { stackEnv } from '../stack/stack-env.js';
import { api } from './helpers/api.js';
import { libfaketime } from './helpers/libfaketime.js';
import { mailsTo } from './helpers/mailbox.js';
import { scrapeMetric } from './helpers/metrics.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const SHARD = 'shard-1';
const tenant = uniqueTenantId('clockskew');
const master = () => node(SHARD, 'master').port;

/** an API instance from source on the stack's services; `env` adds to its environment */
async function startInstance(id: string, env: Record<string, string> = {}): Promise<string> {
  const port = await freePort('127.0.0.1');
  const instance = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    SHARDGATE_INSTANCE_ID: `${id}-${port}`,
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
    SHARDGATE_DRAIN_MS: '0',
    LOG_LEVEL: 'silent',
    ...env,
  });
  const base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (instance.child.exitCode !== null) throw new Error(`exited: ${instance.stderr()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `the instance ${id} ready` },
  );
  return base;
}

/** how far the instance's wall clock is ahead of this process's (ms), from its `Date` header */
async function aheadMs(base: string): Promise<number> {
  const date = (await fetch(`${base}/health`)).headers.get('date');
  return Date.parse(date!) - Date.now();
}

beforeAll(() => createTenant(tenant, SHARD));
afterAll(async () => {
  stopStartedEntries();
  removeTenant(tenant);
  for (const table of ['loans', 'books', 'members', 'tenant_state', 'outbox', 'idempotency_keys'])
    await rootQuery(master(), `DELETE FROM ${table} WHERE tenant_id = ?`, [tenant]);
});

describe('instances whose wall clocks disagree', () => {
  it("store the database server's times: mails due at once, loans never ending before they began, refused tokens counted", async () => {
    const [ahead, real] = await Promise.all([
      startInstance('clock-ahead', {
        LD_PRELOAD: libfaketime(),
        FAKETIME: '+5m',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      }),
      startInstance('clock-real'),
    ]);
    expect(Math.abs((await aheadMs(ahead)) - 300_000)).toBeLessThan(2000);
    expect(Math.abs(await aheadMs(real))).toBeLessThan(2000);
    for (const base of [ahead, real])
      await waitFor(async () => (await api('GET', '/v1/books', { tenant, base })).status === 200, {
        timeoutMs: 5000,
        what: `the tenant known to ${base}`,
      });

    // registered through the instance ahead: the welcome mail is due by the master's clock
    const email = `lib-${tenant}@example.com`;
    const registered = await api('POST', '/v1/members', {
      tenant,
      base: ahead,
      body: { email, name: 'Lib', password: 'correct horse battery' },
    });
    expect(registered.status).toBe(201);
    const registeredAt = Date.now();
    const [row] = await rootQuery<{ due: number; lead: number }>(
      master(),
      `SELECT available_at <= NOW(3) AS due, TIMESTAMPDIFF(SECOND, NOW(3), available_at) AS lead
         FROM outbox WHERE tenant_id = ? AND kind = 'welcome'`,
      [tenant],
    );
    expect(row).toMatchObject({ due: 1 });
    expect(Number(row!.lead)).toBeLessThanOrEqual(0);
    const welcome = await waitFor(() => mailsTo(email)[0], {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: 'the welcome mail in the sink',
    });
    expect(welcome.at - registeredAt).toBeLessThan(10_000);

    // a token of the real-clock instance works on both; one of the instance ahead is refused by
    // the real-clock one (iat 300 s ahead of its clock), and counted
    const login = (base: string) =>
      api('POST', '/v1/auth/login', { tenant, base, body: { email, password: 'correct horse battery' } });
    const token = (await login(real)).json.token as string;
    const aheadToken = (await login(ahead)).json.token as string;
    const refusedBefore = await scrapeMetric(real, 'shardgate_auth_token_refusals_total', {
      reason: 'iat_in_future',
    });
    const refused = await api('GET', '/v1/members/me', { tenant, base: real, token: aheadToken });
    expect([refused.status, refused.json.code]).toEqual([401, 'invalid_token']);
    expect(await scrapeMetric(real, 'shardgate_auth_token_refusals_total', { reason: 'iat_in_future' })).toBe(
      refusedBefore + 1,
    );

    // borrowed on the instance ahead, returned on the real-clock one
    const book = await api('POST', '/v1/books', {
      tenant,
      base: ahead,
      token,
      body: { isbn: '9780306406157', title: 'Clocks', author: 'Skew', copies: 1 },
    });
    expect(book.status).toBe(201);
    const loan = await api('POST', '/v1/loans', {
      tenant,
      base: ahead,
      token,
      body: { bookId: book.json.id },
    });
    expect(loan.status).toBe(201);
    const returned = await api('POST', `/v1/loans/${loan.json.id}/return`, { tenant, base: real, token });
    expect(returned.status).toBe(200);
    const { borrowedAt, returnedAt } = returned.json as { borrowedAt: string; returnedAt: string };
    expect(Date.parse(returnedAt)).toBeGreaterThanOrEqual(Date.parse(borrowedAt));
    // and the borrow's time is the master's, not the instance's 5 minutes ahead
    expect(Math.abs(Date.parse(borrowedAt) - Date.now())).toBeLessThan(10_000);
    const [loanRow] = await rootQuery<{ ended: number }>(
      master(),
      'SELECT returned_at >= borrowed_at AS ended FROM loans WHERE tenant_id = ? AND id = ?',
      [tenant, loan.json.id],
    );
    expect(loanRow).toMatchObject({ ended: 1 });
    // both receipts due at once too
    const [receipts] = await rootQuery<{ notDue: number }>(
      master(),
      `SELECT COUNT(*) AS notDue FROM outbox
         WHERE tenant_id = ? AND kind IN ('loan_receipt', 'return_receipt') AND available_at > NOW(3)`,
      [tenant],
    );
    expect(Number(receipts!.notDue)).toBe(0);
  }, 90_000);

  it('apply a keyed write once when its retry goes to an instance a day ahead, or a day behind', async () => {
    // 25 hours: past the key's 24 h retention by this instance's clock, not by the master's
    const [dayAhead, real] = await Promise.all([
      startInstance('clock-day-ahead', {
        LD_PRELOAD: libfaketime(),
        FAKETIME: '+25h',
        FAKETIME_DONT_FAKE_MONOTONIC: '1',
      }),
      startInstance('clock-real-2'),
    ]);
    expect(Math.abs((await aheadMs(dayAhead)) - 25 * 3_600_000)).toBeLessThan(2000);
    for (const base of [dayAhead, real])
      await waitFor(async () => (await api('GET', '/v1/books', { tenant, base })).status === 200, {
        timeoutMs: 5000,
        what: `the tenant known to ${base}`,
      });
    for (const [first, retry, name] of [
      [real, dayAhead, 'ahead'],
      [dayAhead, real, 'behind'],
    ] as const) {
      const email = `day-${name}-${tenant}@example.com`;
      const headers = { 'Idempotency-Key': `day-${name}-${tenant}` };
      const body = { email, name: 'Day', password: 'correct horse battery' };
      const done = await api('POST', '/v1/members', { tenant, base: first, headers, body });
      expect(done.status).toBe(201);
      const again = await api('POST', '/v1/members', { tenant, base: retry, headers, body });
      expect([again.status, again.headers.get('Idempotent-Replayed'), again.json.id]).toEqual([
        201,
        'true',
        done.json.id,
      ]);
      const [members] = await rootQuery<{ n: number }>(
        master(),
        'SELECT COUNT(*) AS n FROM members WHERE tenant_id = ? AND email = ?',
        [tenant, email],
      );
      expect(Number(members!.n)).toBe(1);
    }
  }, 90_000);
});
