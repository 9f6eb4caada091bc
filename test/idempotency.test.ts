/**
 * `Idempotency-Key` against the real stack: a repeat through the other instance gets the first
 * answer and changes nothing (one loan, one receipt row); eight at once borrow once; a borrow
 * that got a 503 from a frozen master is done exactly once by its retry with the same key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdGet, etcdOverride } from './helpers/etcd.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stackCli, stackPid } from './helpers/stack.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = topology.shards[0]!;
const tenant = uniqueTenantId('idem');
const master = node(shard.id, 'master').port;
const [first, second] = INSTANCES as [string, string];
const restores: (() => void)[] = [];
let token = '';

async function addBook(copies = 5): Promise<string> {
  const r = await api('POST', '/v1/books', {
    tenant,
    token,
    body: { isbn: '9780306406157', title: 'Keyed', author: 'K', copies },
  });
  return r.json.id;
}

async function count(table: 'loans' | 'outbox', where = ''): Promise<number> {
  const rows = await rootQuery<{ n: number }>(
    master,
    `SELECT COUNT(*) AS n FROM ${table} WHERE tenant_id = ? ${where}`,
    [tenant],
  );
  return Number(rows[0]?.n);
}

beforeAll(async () => {
  await createTenant(tenant, shard.id);
  ({ token } = await registerAndLogin(tenant, 'lib@example.com'));
});

afterAll(() => {
  for (const restore of restores.reverse()) restore();
  removeTenant(tenant);
});

describe('Idempotency-Key', () => {
  it('a repeat on the other instance gets the first answer and borrows nothing more', async () => {
    const bookId = await addBook();
    const headers = { 'Idempotency-Key': `borrow-${Date.now()}` };
    const a = await api('POST', '/v1/loans', { tenant, token, base: first, headers, body: { bookId } });
    const b = await api('POST', '/v1/loans', { tenant, token, base: second, headers, body: { bookId } });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(b.text).toBe(a.text);
    expect(b.headers.get('Idempotent-Replayed')).toBe('true');
    expect(b.headers.get('X-Served-By')).toBe('api-2');
    expect(await count('loans')).toBe(1);
    expect(await count('outbox', "AND kind = 'loan_receipt'")).toBe(1);
    // the same key with another body (another last character: an id that already ends in '0'
    // must not be sent back unchanged, which would be the first body and replay its 201)
    const otherBookId = a.json.bookId.replace(/.$/, (c: string) => (c === '0' ? '1' : '0'));
    expect(otherBookId).not.toBe(a.json.bookId);
    const other = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId: otherBookId } });
    expect([other.status, other.json.code]).toEqual([422, 'idempotency_key_reused']);
  });

  it('eight at once through HAProxy borrow once; a retry then gets that answer', async () => {
    const bookId = await addBook();
    const before = await count('loans');
    const headers = { 'Idempotency-Key': `burst-${Date.now()}` };
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } })),
    );
    const outcomes = answers.map((r) => `${r.status} ${r.json.code ?? ''}`.trim());
    expect(outcomes).toContain('201');
    for (const o of outcomes) expect(['201', '409 idempotency_key_in_progress']).toContain(o);
    expect(await count('loans')).toBe(before + 1);
    const retry = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } });
    expect([retry.status, retry.headers.get('Idempotent-Replayed')]).toEqual([201, 'true']);
    expect(await count('loans')).toBe(before + 1);
  });

  it('twenty at once of a borrow that fails (no copy free) answer 409, never 503: their claims of the key meet in the database', async () => {
    // before: 8 of 300 such answers were 503 "mysql-master:shard-1 is unavailable" (the claims'
    // inserts deadlocked once the holder rolled back, the retries ran out), the master healthy
    const bookId = await addBook(0);
    const outcomes = new Map<string, number>();
    for (let round = 0; round < 15; round++) {
      const headers = { 'Idempotency-Key': `none-free-${Date.now()}-${round}` };
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          api('POST', '/v1/loans', { tenant, token, headers, base: INSTANCES[i % 2], body: { bookId } }),
        ),
      );
      for (const r of answers) {
        const o = `${r.status} ${r.json?.code ?? ''}`.trim();
        outcomes.set(o, (outcomes.get(o) ?? 0) + 1);
      }
    }
    expect(
      [...outcomes.keys()].filter(
        (o) => o !== '409 no_copy_available' && o !== '409 idempotency_key_in_progress',
      ),
    ).toEqual([]);
    expect(outcomes.get('409 no_copy_available')).toBeGreaterThan(0);
  });

  it("a registration's repeat with guessed passwords, across both instances, meets the login throttle", async () => {
    // an outside check found a registration's password by replaying its key: 201 for the right
    // guess, 422 for others, 101 guesses in 0.4 s, none throttled
    const email = `vic-${Date.now()}@example.com`;
    const vic = { email, name: 'Vic', password: 'Summer2026!' };
    const headers = { 'Idempotency-Key': `signup-${email}` };
    expect((await api('POST', '/v1/members', { tenant, headers, body: vic })).status).toBe(201);
    const answers: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      const guess = await api('POST', '/v1/members', {
        tenant,
        headers,
        base: INSTANCES[i % 2],
        body: { ...vic, password: `guess-number-${i}` },
      });
      answers.push(guess.status);
    }
    expect(answers).toEqual([...Array(10).fill(422), 429, 429]);
    const right = await api('POST', '/v1/members', { tenant, headers, body: vic });
    expect([right.status, right.json.code]).toEqual([429, 'too_many_login_attempts']);
  });

  it('a borrow answered 503 by a frozen master is done exactly once by its retry with the same key', async () => {
    const bookId = await addBook();
    restores.push(etcdOverride('breakers/mysql-master/call_timeout_ms', '500'));
    restores.push(etcdOverride('breakers/mysql-master/failure_threshold', '50'));
    await waitFor(
      async () => {
        const body = (await (await fetch(`${first}/health/circuit-breakers`)).json()) as {
          breakers: { name: string; settings: { call_timeout_ms: number } }[];
        };
        return (
          body.breakers.find((b) => b.name === `mysql-master:${shard.id}`)?.settings.call_timeout_ms === 500
        );
      },
      { what: 'call_timeout_ms 500 applied' },
    );
    const before = await count('loans');
    const headers = { 'Idempotency-Key': `frozen-${Date.now()}` };
    const pid = stackPid(shard.master.name)!;
    let failed: Awaited<ReturnType<typeof api>>;
    process.kill(pid, 'SIGSTOP');
    try {
      failed = await api('POST', '/v1/loans', { tenant, token, base: first, headers, body: { bookId } });
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(failed.status).toBe(503);
    // the client retries after Retry-After, with the same key, as often as it takes
    const done = await waitFor(
      async () => {
        const r = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } });
        return r.status === 201 ? r : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 1000, what: 'the retry borrowing' },
    );
    const again = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } });
    expect([again.status, again.text]).toEqual([201, done.text]);
    expect(await count('loans')).toBe(before + 1);
  });

  it('a key older than a day is a new request, its row not purged yet: borrowed again', async () => {
    const bookId = await addBook();
    const key = `daily-${Date.now()}`;
    const headers = { 'Idempotency-Key': key };
    const first = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } });
    expect(first.status).toBe(201);
    // the row made two days old, as a quiet tenant's are (purging is lazy)
    await rootQuery(
      master,
      'UPDATE idempotency_keys SET created_at = NOW() - INTERVAL 2 DAY WHERE tenant_id = ? AND idem_key LIKE ?',
      [tenant, `%/${key}`],
    );
    const before = await count('loans');
    // before: the day-old answer replayed, nothing borrowed
    const later = await api('POST', '/v1/loans', { tenant, token, headers, body: { bookId } });
    expect(later.status).toBe(201);
    expect(later.headers.get('Idempotent-Replayed')).toBeNull();
    expect(later.json.id).not.toBe(first.json.id);
    expect(await count('loans')).toBe(before + 1);
  });

  it('a keyed write whose claimant was SIGKILLed before its answer was stored: answer_lost once its registration is gone, within the 10 s it read as in progress', async () => {
    // a claim made over 10 s after api-1's start: its registration, once gone, says it is dead
    // (one made sooner may be of an instance not registered yet)
    await waitFor(
      () => {
        const since = JSON.parse(etcdGet('instances/api-1') ?? '{}').startedAt as string | undefined;
        return since !== undefined && Date.now() - Date.parse(since) > 11_000;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'api-1 running for 11 s' },
    );
    const bookId = await addBook();
    const key = `killed-${Date.now()}`;
    const headers = { 'Idempotency-Key': key };
    const done = await api('POST', '/v1/loans', { tenant, token, base: first, headers, body: { bookId } });
    expect(done.status).toBe(201);
    const where = 'WHERE tenant_id = ? AND idem_key LIKE ?';
    const [row] = await rootQuery<{ claimed_by: string }>(
      master,
      `SELECT claimed_by FROM idempotency_keys ${where}`,
      [tenant, `%/${key}`],
    );
    const registered = JSON.parse(etcdGet('instances/api-1') ?? '{}') as { startedAt?: string };
    expect(row?.claimed_by).toBe(`api-1 ${registered.startedAt}`);
    // as if api-1 had died between its COMMIT and storing the answer; the row made young for 40 s
    // (shifted, whatever the server's time zone), so only who claimed it can end "in progress"
    await rootQuery(
      master,
      `UPDATE idempotency_keys SET response = NULL, created_at = created_at + INTERVAL 30 SECOND ${where}`,
      [tenant, `%/${key}`],
    );
    const repeat = async () =>
      (await api('POST', '/v1/loans', { tenant, token, base: second, headers, body: { bookId } })).json.code;
    expect(await repeat()).toBe('idempotency_key_in_progress');
    process.kill(stackPid('api-1')!, 'SIGKILL');
    try {
      // gone from etcd within its 5 s lease, or registered again by its next start
      await waitFor(async () => (await repeat()) === 'idempotency_key_answer_lost', {
        timeoutMs: 15_000,
        intervalMs: 250,
        what: 'answer_lost from api-2 once api-1 no longer runs',
      });
    } finally {
      stackCli(['up']);
      await waitFor(
        async () => (await fetch(`${first}/health/ready`).catch(() => undefined))?.status === 200,
        {
          timeoutMs: 30_000,
          what: 'api-1 ready again',
        },
      );
    }
    // the borrow was done once: the repeats borrowed nothing (the id is the API's own, no quote in it)
    expect(await count('loans', `AND book_id = '${bookId}'`)).toBe(1);
  });
});
