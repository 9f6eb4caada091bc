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
    await waitFor(() => serverUp(victim), { timeoutMs: 15_000, what: `${victim} UP before the freeze` });
    const retriesBefore = Number((await statRow(victim)).wretr);
    const servedBy = new Set<string>();
    const traffic = load(async () => {
      const r = await fetch(`${HAPROXY}/v1/books/${bookId}`, { headers: { 'X-Tenant-ID': tenant } });
      await r.arrayBuffer();
      servedBy.add(r.headers.get('X-Served-By') ?? '');
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
      // waits for the requests the frozen instance holds: answered elsewhere after 10 s, or a 504
      // after `timeout server` (30 s) without the read's retry
      const statuses = await traffic.stop();
      expect(statuses.length).toBeGreaterThan(50);
      expect(statuses.filter((s) => s >= 500 || s === 0)).toEqual([]);
      // the load did reach the frozen instance: HAProxy retried requests it held
      expect(Number((await statRow(victim)).wretr)).toBeGreaterThan(retriesBefore);
      expect(servedBy).toContain(topology.apis[1]!.id);
    } finally {
      process.kill(frozen, 'SIGCONT');
      await traffic.stop();
      await waitFor(() => serverUp(victim), { timeoutMs: 15_000, what: `${victim} UP after SIGCONT` });
    }
  }, 90_000);

  it('SIGKILL api-1 holding writes with an Idempotency-Key → each sent again to api-2 and done once', async () => {
    await restoreStack();
    await waitFor(() => serverUp(victim), { timeoutMs: 15_000, what: `${victim} UP before the freeze` });
    const before = await statRow(victim);
    const run = `${process.pid}-${Date.now()}`;
    const titles = Array.from({ length: 12 }, (_, i) => `keyed-${run}-${i}`);
    // a client that sends a write with a key until it has a final answer, as the README says
    const write = async (title: string) => {
      for (let attempt = 0; ; attempt++) {
        const r = await api('POST', '/v1/books', {
          tenant,
          token,
          headers: { 'Idempotency-Key': `k-${title}` },
          body: { isbn: '9780201633610', title, author: 'Gamma', copies: 1 },
        }).catch(() => undefined);
        if (r?.status === 409 && r.json?.code === 'idempotency_key_in_progress' && attempt < 10) {
          await new Promise((res) => setTimeout(res, 1000 * Number(r.headers.get('Retry-After') ?? 1)));
          continue;
        }
        return { status: r?.status ?? 0, code: r?.json?.code, servedBy: r?.headers.get('X-Served-By') };
      }
    };
    // frozen first, so that it takes its share of the writes (the checks mark it down after ~2 s)
    // and has run none of them when it is killed
    const frozen = pid(victim);
    process.kill(frozen, 'SIGSTOP');
    const answers = Promise.all(titles.map(write));
    await new Promise((r) => setTimeout(r, 500));
    process.kill(frozen, 'SIGKILL');
    const done = await answers;
    try {
      expect(done.filter((a) => a.status !== 201)).toEqual([]);
      expect(new Set(done.map((a) => a.servedBy))).toEqual(new Set([topology.apis[1]!.id]));
      const rows = await rootQuery<{ title: string; n: number }>(
        node('shard-1', 'master').port,
        'SELECT title, COUNT(*) AS n FROM books WHERE tenant_id = ? AND title LIKE ? GROUP BY title',
        [tenant, `keyed-${run}-%`],
      );
      expect(Object.fromEntries(rows.map((r) => [r.title, Number(r.n)]))).toEqual(
        Object.fromEntries(titles.map((t) => [t, 1])),
      );
      // the writes did reach the killed instance: HAProxy sent them again
      const after = await statRow(victim);
      expect(Number(after.wretr) + Number(after.wredis)).toBeGreaterThan(
        Number(before.wretr) + Number(before.wredis),
      );
    } finally {
      await restoreStack();
    }
  }, 90_000);
});
