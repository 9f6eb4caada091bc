/**
 * A write the API gave up on while the master is frozen (SIGSTOP): a borrow and a book change
 * each answer 503 after the master breaker's `call_timeout_ms`. A frozen master takes no KILL, so
 * the 503 of a write it was sent says the outcome is unknown (`write_outcome_unknown`): a batch
 * already in its socket would run when it resumes; one still waiting for a new connection is
 * `dependency_unavailable` (never sent). These two started while it was frozen, with only their first round
 * trip sent, so once it resumes neither is in the database and no receipt is queued, and a
 * client that retries after `Retry-After` borrows once. The 503 names the breaker, never the
 * server's address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride } from './helpers/etcd.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = topology.shards[1]!;
const tenant = uniqueTenantId('write-timeout');
const restores: (() => void)[] = [];
const base = INSTANCES[0]!;
let token = '';
let bookId = '';

async function masterSettings(): Promise<{ call_timeout_ms: number; failure_threshold: number } | undefined> {
  const body = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    breakers: { name: string; settings: { call_timeout_ms: number; failure_threshold: number } }[];
  };
  return body.breakers.find((b) => b.name === `mysql-master:${shard.id}`)?.settings;
}

beforeAll(async () => {
  await createTenant(tenant, shard.id);
  ({ token } = await registerAndLogin(tenant, 'lib@example.com'));
  const book = await api('POST', '/v1/books', {
    tenant,
    token,
    body: { isbn: '9780306406157', title: 'Original title', author: 'A', copies: 3 },
  });
  bookId = book.json.id;
  // short timeout, and a threshold the two writes below cannot reach: the breaker stays closed
  restores.push(etcdOverride('breakers/mysql-master/call_timeout_ms', '500'));
  restores.push(etcdOverride('breakers/mysql-master/failure_threshold', '50'));
  await waitFor(async () => (await masterSettings())?.call_timeout_ms === 500, { what: 'settings applied' });
});

afterAll(() => {
  for (const restore of restores.reverse()) restore();
  removeTenant(tenant);
});

describe('a write that timed out', () => {
  it('answers 503 naming the breaker and is not applied when the frozen master resumes', async () => {
    const master = node(shard.id, 'master').port;
    const outbox = async () =>
      Number(
        (
          await rootQuery<{ n: number }>(master, 'SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ?', [
            tenant,
          ])
        )[0]?.n,
      );
    const mailsBefore = await outbox();
    const pid = stackPid(shard.master.name)!;
    process.kill(pid, 'SIGSTOP');
    let answers: Awaited<ReturnType<typeof api>>[];
    try {
      answers = await Promise.all([
        api('POST', '/v1/loans', { tenant, token, base, body: { bookId } }),
        api('PATCH', `/v1/books/${bookId}`, { tenant, token, base, body: { title: 'Changed while frozen' } }),
      ]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    for (const a of answers) {
      expect(a.status).toBe(503);
      expect(a.headers.get('Retry-After')).toBe('1');
      // sent: the outcome is unknown; still waiting for a new connection to the frozen master
      // when given up on: never sent, so not applied
      expect(['write_outcome_unknown', 'dependency_unavailable']).toContain(a.json.code);
      expect(a.json.detail).toMatch(
        a.json.code === 'write_outcome_unknown'
          ? new RegExp(`^mysql-master:${shard.id} did not answer in time`)
          : new RegExp(`^mysql-master:${shard.id} is unavailable`),
      );
      expect(a.json.detail).not.toMatch(/127\.0\.0\.1|:\d{4}/);
    }
    // the master has resumed: give an abandoned transaction every chance to commit
    await waitFor(
      async () =>
        (await api('GET', `/v1/books/${bookId}`, { tenant, headers: { 'Cache-Control': 'no-cache' } }))
          .status === 200,
      { timeoutMs: 5000, what: 'the shard answering again' },
    );
    await new Promise((r) => setTimeout(r, 1000));
    const [book] = await rootQuery<{ title: string; available: number }>(
      master,
      'SELECT title, available FROM books WHERE tenant_id = ? AND id = ?',
      [tenant, bookId],
    );
    expect(book).toEqual({ title: 'Original title', available: 3 });
    const loans = await rootQuery<{ n: number }>(
      master,
      'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ?',
      [tenant],
    );
    expect(Number(loans[0]?.n)).toBe(0);
    expect(await outbox()).toBe(mailsBefore);
    // and the retry the 503 asked for borrows exactly once
    const retried = await api('POST', '/v1/loans', { tenant, token, base, body: { bookId } });
    expect(retried.status).toBe(201);
    const after = await rootQuery<{ n: number }>(
      master,
      'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ?',
      [tenant],
    );
    expect(Number(after[0]?.n)).toBe(1);
  });
});
