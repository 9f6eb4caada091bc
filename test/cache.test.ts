/**
 * Issue "cache", Done-when, against the real stack (Redis :6380, both API instances):
 * MISS → HIT → PATCH → MISS with the new title on either instance; 200 concurrent cold GETs on
 * one instance make 1 database read; a borrow is visible at once; Redis frozen (SIGSTOP) under a
 * stream of reads → zero 5xx, bounded latency, breaker open, and hits resume after SIGCONT;
 * `cache/enabled false` → BYPASS within 2 s.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_DIR } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdOverride, etcdPut } from './helpers/etcd.js';
import { scrapeMetric } from './helpers/metrics.js';
import { rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('cache');
const [one, two] = INSTANCES as [string, string];
const restores: (() => void)[] = [];
let token = '';

async function newBook(title: string, copies = 2): Promise<string> {
  const r = await api('POST', '/v1/books', {
    tenant,
    token,
    body: { isbn: '9780262033848', title, author: 'Cormen', copies },
  });
  expect(r.status).toBe(201);
  return r.json.id as string;
}

const dbLoads = (base: string) => scrapeMetric(base, 'shardgate_cache_db_loads_total', { entry: 'book' });

beforeAll(async () => {
  await createTenant(tenant, 'shard-2');
  token = (await registerAndLogin(tenant, 'librarian@example.com')).token;
});
afterAll(() => {
  for (const r of restores.reverse()) r();
  removeTenant(tenant);
});

describe('Redis read cache', () => {
  it('MISS then HIT; after a PATCH the next GET is a MISS with the new title on either instance', async () => {
    const id = await newBook('First title');
    const first = await api('GET', `/v1/books/${id}`, { tenant, base: one });
    expect(first.headers.get('X-Cache')).toBe('MISS');
    const hit = await waitFor(
      async () => {
        const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
        return r.headers.get('X-Cache') === 'HIT' ? r : undefined;
      },
      { timeoutMs: 2000, what: 'a HIT' },
    );
    expect(hit.json.title).toBe('First title');
    // the other instance shares the entry
    expect((await api('GET', `/v1/books/${id}`, { tenant, base: two })).headers.get('X-Cache')).toBe('HIT');

    const patched = await api('PATCH', `/v1/books/${id}`, {
      tenant,
      token,
      base: one,
      body: { title: 'New title' },
    });
    expect(patched.status).toBe(200);
    for (const base of [two, one]) {
      const r = await api('GET', `/v1/books/${id}`, { tenant, base });
      expect(r.json.title).toBe('New title');
      if (base === two) expect(r.headers.get('X-Cache')).toBe('MISS');
    }
  });

  it('a version key deleted by hand after a PATCH brings back no older title', async () => {
    // an outside check: the book's first reads had filled an entry under "no version", which the
    // deletion made current again for ~50 s (served 98–101 times)
    const id = await newBook('Original');
    expect((await api('GET', `/v1/books/${id}`, { tenant, base: two })).json.title).toBe('Original');
    const patched = await api('PATCH', `/v1/books/${id}`, {
      tenant,
      token,
      base: one,
      body: { title: 'Patched' },
    });
    expect(patched.status).toBe(200);
    expect((await api('GET', `/v1/books/${id}`, { tenant, base: two })).json.title).toBe('Patched');
    // the replica has the PATCH: a read with no version floor after the deletion may read it
    // (one that lacked a write younger than the lag limit would be within the documented bound)
    const replica = topology.shards.find((s) => s.id === 'shard-2')!.replicas[0]!;
    await waitFor(
      async () =>
        (
          await rootQuery<{ title: string }>(
            replica.port,
            'SELECT title FROM books WHERE tenant_id = ? AND id = ?',
            [tenant, id],
          )
        )[0]?.title === 'Patched',
      { timeoutMs: 5000, what: 'the PATCH on the replica' },
    );
    const redis = new Redis(topology.redis.port, topology.host);
    try {
      const [versionKey] = await redis.keys(`sg:{${tenant}}:*:v:book:${id}`);
      expect(versionKey).toBeDefined();
      expect(await redis.del(versionKey!)).toBe(1);
    } finally {
      redis.disconnect();
    }
    for (let i = 0; i < 10; i++)
      for (const base of [one, two]) {
        const r = await api('GET', `/v1/books/${id}`, { tenant, base });
        expect([r.status, r.json.title]).toEqual([200, 'Patched']);
      }
  });

  it('makes one database read for 200 concurrent GETs of a cold key on one instance', async () => {
    const id = await newBook('Cold key');
    const before = await dbLoads(one);
    const answers = await Promise.all(
      Array.from({ length: 200 }, () => api('GET', `/v1/books/${id}`, { tenant, base: one })),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.headers.get('X-Cache') === 'MISS').length).toBeGreaterThan(0);
    expect((await dbLoads(one)) - before).toBe(1);
  });

  it('shows the new availability at once after a borrow (no stale HIT)', async () => {
    const id = await newBook('Borrowed', 2);
    await api('GET', `/v1/books/${id}`, { tenant });
    await waitFor(
      async () => (await api('GET', `/v1/books/${id}`, { tenant })).headers.get('X-Cache') === 'HIT',
      {
        what: 'HIT before the borrow',
      },
    );
    const loan = await api('POST', '/v1/loans', { tenant, token, body: { bookId: id } });
    expect(loan.status).toBe(201);
    for (const base of INSTANCES) {
      const r = await api('GET', `/v1/books/${id}`, { tenant, base });
      expect(r.json.available).toBe(1);
    }
    const withToken = await api('GET', `/v1/books/${id}`, {
      tenant,
      headers: { 'X-Consistency-Token': loan.headers.get('X-Consistency-Token')! },
    });
    expect(withToken.json.available).toBe(1);
  });

  it('keeps answering with Redis frozen: zero 5xx, bounded latency, breaker open; hits resume after SIGCONT', async () => {
    const CALL_TIMEOUT = 100;
    restores.push(etcdOverride('breakers/redis/call_timeout_ms', String(CALL_TIMEOUT)));
    restores.push(etcdOverride('breakers/redis/failure_threshold', '3'));
    restores.push(etcdOverride('breakers/redis/reset_timeout_ms', '1000'));
    const id = await newBook('Under fire');
    await api('GET', `/v1/books/${id}`, { tenant, base: one });
    // the three settings in force on the instance before Redis freezes
    await waitFor(
      async () => {
        const body = (await (await fetch(`${one}/health/circuit-breakers`)).json()) as {
          breakers: { name: string; settings: Record<string, number> }[];
        };
        const s = body.breakers.find((b) => b.name === 'redis')?.settings;
        return (
          s?.call_timeout_ms === CALL_TIMEOUT && s.failure_threshold === 3 && s.reset_timeout_ms === 1000
        );
      },
      { timeoutMs: 5000, intervalMs: 50, what: 'the redis breaker settings in force' },
    );
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.redis.name}.pid`), 'utf8'));
    const latencies: number[] = [];
    const statuses: number[] = [];
    const caches: string[] = [];
    process.kill(pid, 'SIGSTOP');
    try {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await api('GET', `/v1/books/${id}`, { tenant, base: one });
        latencies.push(performance.now() - t0);
        statuses.push(r.status);
        caches.push(r.headers.get('X-Cache') ?? '');
      }
      const breakers = (await (await fetch(`${one}/health/circuit-breakers`)).json()) as {
        breakers: { name: string; state: string }[];
      };
      expect(breakers.breakers.find((b) => b.name === 'redis')?.state).toBe('open');
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(caches.every((c) => c === 'BYPASS')).toBe(true);
    // only the reads before the breaker opened (failure_threshold 3) wait for the call timeout:
    // the half-open trials of the next 2 s run in the background (one read of slack for the host)
    expect(latencies.filter((ms) => ms >= CALL_TIMEOUT).length).toBeLessThanOrEqual(3 + 1);
    latencies.sort((a, b) => a - b);
    const p99 = latencies[Math.floor(latencies.length * 0.99)]!;
    // 2 × call_timeout_ms + a database read (generous: the read itself is a few ms here)
    expect(p99).toBeLessThan(2 * CALL_TIMEOUT + 100);
    await waitFor(
      async () =>
        (await api('GET', `/v1/books/${id}`, { tenant, base: one })).headers.get('X-Cache') === 'HIT',
      { timeoutMs: 8000, intervalMs: 100, what: 'hits to resume after SIGCONT' },
    );
  });

  it('cache/enabled false → BYPASS within 2 s on every instance', async () => {
    const id = await newBook('Switch');
    restores.push(etcdOverride('cache/enabled', 'true'));
    const t0 = Date.now();
    etcdPut('cache/enabled', 'false');
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((base) => api('GET', `/v1/books/${id}`, { tenant, base })))).every(
          (r) => r.headers.get('X-Cache') === 'BYPASS',
        ),
      { timeoutMs: 2000, intervalMs: 20, what: 'BYPASS everywhere' },
    );
    expect(Date.now() - t0).toBeLessThan(2000);
    etcdPut('cache/enabled', 'true');
  });
});
