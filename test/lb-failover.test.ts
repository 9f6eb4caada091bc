/**
 * Issue "control plane / HAProxy", Done-when 2: SIGTERM api-1 under a steady load through
 * HAProxy → zero 5xx (readiness 503 + agent `drain`, then in-flight requests finish); SIGKILL
 * api-1 under a load of GETs → zero 5xx on GETs (HAProxy redispatches and retries on connection
 * failure / empty response) and HAProxy marks it down within 3 s; SIGSTOP api-1 under GETs → zero
 * 5xx: the GETs it holds are retried after 10 s on api-2 (`retry-on response-timeout`), where they
 * used to wait for `timeout server` (30 s) and get 504; SIGKILL api-1 while it holds writes with
 * an `Idempotency-Key` → each is sent again to api-2 and done once (a write without a key is never
 * sent again). The instance is restarted after.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haproxyCommand, showServers } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET, STATE_DIR } from '../stack/paths.js';
import { isAlive } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { api, HAPROXY, registerAndLogin } from './helpers/api.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const victim = topology.apis[0]!.id;
const tenant = uniqueTenantId('lbf');
let token = '';
let bookId = '';

function pid(name: string): number {
  return Number(readFileSync(join(STATE_DIR, 'pids', `${name}.pid`), 'utf8'));
}

async function restoreStack(): Promise<void> {
  execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  await waitFor(
    async () => (await showServers(HAPROXY_SOCKET, topology.haproxy.backend)).every((s) => !s.maintenance),
    {
      timeoutMs: 10_000,
      what: 'servers back',
    },
  );
}

/** `concurrency` loops of requests until `stop()`; records every status (0 = network error). */
function load(make: (i: number) => Promise<number>, concurrency = 6) {
  const statuses: number[] = [];
  let running = true;
  const loops = Array.from({ length: concurrency }, async (_, k) => {
    let i = k;
    while (running) {
      statuses.push(await make(i).catch(() => 0));
      i += concurrency;
    }
  });
  return {
    statuses,
    async stop() {
      running = false;
      await Promise.all(loops);
      return statuses;
    },
  };
}

/** a server's row of `show stat` (CSV; the header line names the columns) */
async function statRow(name: string): Promise<Record<string, string>> {
  const lines = (await haproxyCommand(HAPROXY_SOCKET, 'show stat')).split('\n');
  const header = lines[0]!.replace(/^# /, '').split(',');
  const row = lines.find((l) => l.startsWith(`${topology.haproxy.backend},${name},`))?.split(',') ?? [];
  return Object.fromEntries(header.map((h, i) => [h, row[i] ?? '']));
}

async function serverUp(name: string): Promise<boolean> {
  return (await statRow(name)).status?.startsWith('UP') === true;
}

/** UP and past `slowstart`: its effective weight is its user weight again, so it gets its share */
async function fullyBack(name: string): Promise<void> {
  await waitFor(
    async () => {
      const row = await statRow(name);
      return row.status?.startsWith('UP') === true && Number(row.weight) > 0 && row.weight === row.uweight;
    },
    { timeoutMs: 20_000, what: `${name} UP at its full weight` },
  );
}

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  token = (await registerAndLogin(tenant, 'lib@example.com')).token;
  const b = await api('POST', '/v1/books', {
    tenant,
    token,
    body: { isbn: '9780201633610', title: 'Design Patterns', author: 'Gamma', copies: 1000 },
  });
  bookId = b.json.id;
});

afterAll(async () => {
  await restoreStack();
  removeTenant(tenant);
});

describe('HAProxy failover', () => {
  it('SIGTERM api-1 under steady reads and writes → zero 5xx', async () => {
    const traffic = load(async (i) => {
      if (i % 5 === 0) {
        const r = await api('POST', '/v1/books', {
          tenant,
          token,
          body: { isbn: '9780201633610', title: `T${i}`, author: 'Gamma', copies: 1 },
        });
        return r.status;
      }
      const r = await fetch(`${HAPROXY}/v1/books/${bookId}`, { headers: { 'X-Tenant-ID': tenant } });
      await r.arrayBuffer();
      return r.status;
    });
    // the next test needs api-1 back, also when this one fails half-way
    try {
      await new Promise((r) => setTimeout(r, 500));
      const p = pid(victim);
      process.kill(p, 'SIGTERM');
      await waitFor(() => !isAlive(p), { timeoutMs: 15_000, what: `${victim} to exit after draining` });
      await new Promise((r) => setTimeout(r, 500));
      const statuses = await traffic.stop();
      expect(statuses.length).toBeGreaterThan(50);
      expect(statuses.filter((s) => s >= 500 || s === 0)).toEqual([]);
    } finally {
      await traffic.stop();
      await restoreStack();
    }
  });

  it('SIGKILL api-1 under GETs → zero 5xx on GETs, marked down within 3 s', async () => {
    await waitFor(() => serverUp(victim), { timeoutMs: 10_000, what: `${victim} UP before the kill` });
    const traffic = load(async () => {
      const r = await fetch(`${HAPROXY}/v1/books/${bookId}`, { headers: { 'X-Tenant-ID': tenant } });
      await r.arrayBuffer();
      return r.status;
    });
    await new Promise((r) => setTimeout(r, 500));
    const killedAt = Date.now();
    process.kill(pid(victim), 'SIGKILL');
    await waitFor(async () => !(await serverUp(victim)), {
      timeoutMs: 3000,
      intervalMs: 50,
      what: 'HAProxy marks it DOWN',
    });
    const downAfter = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 500));
    const statuses = await traffic.stop();
    expect(downAfter).toBeLessThan(3000);
    expect(statuses.length).toBeGreaterThan(50);
    expect(statuses.filter((s) => s >= 500 || s === 0)).toEqual([]);
  });

  it('SIGSTOP api-1 under GETs → zero 5xx: the GETs it holds are answered by api-2', async () => {
    await restoreStack();
    await fullyBack(victim);
    const before = await statRow(victim);
    const latencies: number[] = [];
    const traffic = load(async () => {
      const t0 = performance.now();
      const r = await fetch(`${HAPROXY}/v1/books/${bookId}`, { headers: { 'X-Tenant-ID': tenant } });
      await r.arrayBuffer();
      latencies.push(performance.now() - t0);
      return r.status;
    });
    const frozen = pid(victim);
    try {
      await new Promise((r) => setTimeout(r, 500));
      process.kill(frozen, 'SIGSTOP');
      await waitFor(async () => !(await serverUp(victim)), {
        timeoutMs: 5000,
        what: 'HAProxy marks it DOWN',
      });
      await new Promise((r) => setTimeout(r, 500));
      // waits for the requests the frozen instance holds: answered elsewhere after 10 s; without
      // the read's own server timeout after 30 s (or a 504 without the retry)
      const statuses = await traffic.stop();
      expect(statuses.length).toBeGreaterThan(50);
      expect(statuses.filter((s) => s >= 500 || s === 0)).toEqual([]);
      const after = await statRow(victim);
      // the load did reach the frozen instance, and HAProxy sent again what it held there
      expect(Number(after.stot)).toBeGreaterThan(Number(before.stot));
      expect(Number(after.wretr) + Number(after.wredis)).toBeGreaterThan(
        Number(before.wretr) + Number(before.wredis),
      );
      // a generous bound: 10 s and a retry, far from the 30 s of `timeout server`
      expect(Math.max(...latencies)).toBeLessThan(20_000);
    } finally {
      process.kill(frozen, 'SIGCONT');
      await traffic.stop();
      await waitFor(() => serverUp(victim), { timeoutMs: 15_000, what: `${victim} UP after SIGCONT` });
    }
  }, 90_000);

  it('SIGKILL api-1 holding writes: those with an Idempotency-Key are sent again to api-2 and done once, those without are not sent again', async () => {
    await restoreStack();
    await fullyBack(victim);
    const before = await statRow(victim);
    const run = `${process.pid}-${Date.now()}`;
    const keyed = Array.from({ length: 12 }, (_, i) => `keyed-${run}-${i}`);
    const keyless = Array.from({ length: 12 }, (_, i) => `keyless-${run}-${i}`);
    // a client that sends a keyed write until it has a final answer, as docs/http-api.md says; a
    // keyless one is sent once
    const write = async (title: string, key: boolean) => {
      for (let attempt = 0; ; attempt++) {
        const r = await api('POST', '/v1/books', {
          tenant,
          token,
          headers: key ? { 'Idempotency-Key': `k-${title}` } : {},
          body: { isbn: '9780201633610', title, author: 'Gamma', copies: 1 },
        }).catch(() => undefined);
        if (key && r?.status === 409 && r.json?.code === 'idempotency_key_in_progress' && attempt < 10) {
          await new Promise((res) => setTimeout(res, 1000 * Number(r.headers.get('Retry-After') ?? 1)));
          continue;
        }
        return { title, status: r?.status ?? 0, servedBy: r?.headers.get('X-Served-By') };
      }
    };
    // frozen first, so that it takes its share of the writes (the checks mark it down after ~2 s)
    // and has run none of them when it is killed
    const frozen = pid(victim);
    process.kill(frozen, 'SIGSTOP');
    const answers = Promise.all([
      ...keyed.map((t) => write(t, true)),
      ...keyless.map((t) => write(t, false)),
    ]);
    await new Promise((r) => setTimeout(r, 500));
    const held = await statRow(victim);
    process.kill(frozen, 'SIGKILL');
    const done = await answers;
    try {
      // the frozen instance took some of each kind (round robin over two servers at full weight)
      expect(Number(held.stot)).toBeGreaterThan(Number(before.stot));
      const keyedDone = done.filter((a) => a.title.startsWith('keyed-'));
      const keylessDone = done.filter((a) => a.title.startsWith('keyless-'));
      expect(keyedDone.filter((a) => a.status !== 201)).toEqual([]);
      expect(new Set(keyedDone.map((a) => a.servedBy))).toEqual(new Set([topology.apis[1]!.id]));
      // a keyless write the killed instance held is not sent again: a 502 or a closed connection
      const lost = keylessDone.filter((a) => a.status !== 201);
      expect(lost.length).toBeGreaterThan(0);
      expect(lost.every((a) => a.status === 502 || a.status === 0)).toBe(true);
      const rows = await rootQuery<{ title: string; n: number }>(
        node('shard-1', 'master').port,
        'SELECT title, COUNT(*) AS n FROM books WHERE tenant_id = ? AND title LIKE ? GROUP BY title',
        [tenant, `%-${run}-%`],
      );
      const written = Object.fromEntries(rows.map((r) => [r.title, Number(r.n)]));
      // every keyed write once; a keyless one once when it was answered 201, never when it was lost
      expect(written).toEqual(
        Object.fromEntries([
          ...keyed.map((t) => [t, 1]),
          ...keylessDone.filter((a) => a.status === 201).map((a) => [a.title, 1]),
        ]),
      );
      const after = await statRow(victim);
      expect(Number(after.wretr) + Number(after.wredis)).toBeGreaterThan(
        Number(before.wretr) + Number(before.wredis),
      );
    } finally {
      await restoreStack();
    }
  }, 90_000);
});
