/**
 * Issue "circuit breakers", Done-when 1–3, against real processes:
 * - `etcdctl put …breakers/mysql-replica/failure_threshold 2` reaches both instances within 2 s;
 *   SIGSTOP a replica → its breaker opens, reads keep answering 200 from the master, and
 *   `/health/circuit-breakers` shows `open`; SIGCONT → half-open → closed;
 * - SIGKILL a shard master → once its breaker is open, writes to that shard answer 503 with
 *   Retry-After in under 50 ms; the other shard keeps writing and both keep reading;
 * - changing `call_timeout_ms` on a live half-open breaker does not reset its state.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STATE_DIR } from '../stack/paths.js';
import { portOpen } from '../stack/probes.js';
import { isAlive } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdDel, etcdGet, etcdOverride, etcdPut, etcdQuickPutter } from './helpers/etcd.js';
import { breakerSettingsInForce, cacheEnabledInForce } from './helpers/live-config.js';
import { scrapeMetric } from './helpers/metrics.js';
import { rootConnection, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

interface BreakerRow {
  name: string;
  kind: string;
  state: 'closed' | 'open' | 'half_open';
  failures: number;
  settings: Record<string, number>;
  since: string;
  writesOnly?: true;
}

async function breakersOf(base: string): Promise<{ configRevision: number; breakers: BreakerRow[] }> {
  return (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    configRevision: number;
    breakers: BreakerRow[];
  };
}

async function breaker(base: string, name: string): Promise<BreakerRow | undefined> {
  return (await breakersOf(base)).breakers.find((b) => b.name === name);
}

/**
 * Writes to shard A succeed again through `base`, then every instance's master breaker is closed
 * (left so for whatever runs next).
 */
async function writesAgain(base: string, name: string, book: object): Promise<void> {
  const ok = await waitFor(
    async () => {
      const r = await api('POST', '/v1/books', { tenant: tenantA, token: tokenA, base, body: book });
      return r.status === 201 ? r : undefined;
    },
    { timeoutMs: 20_000, intervalMs: 250, what: 'writes to the master once it answers again' },
  );
  expect(ok.status).toBe(201);
  await waitFor(
    async () =>
      (await Promise.all(INSTANCES.map((b) => breaker(b, name)))).every((b) => !b || b.state === 'closed'),
    { timeoutMs: 15_000, intervalMs: 200, what: `${name} closed on every instance` },
  );
}

/** `breakers/mysql-master/<setting>` overrides for this test (restored after all), in force */
async function masterBreaker(settings: Record<string, number>): Promise<void> {
  for (const [setting, value] of Object.entries(settings))
    restores.push(etcdOverride(`breakers/mysql-master/${setting}`, String(value)));
  await breakerSettingsInForce('mysql-master', settings);
}

/** a book for tenant A through `base` */
function postBook(base: string, title: string, copies = 1) {
  return api('POST', '/v1/books', {
    tenant: tenantA,
    token: tokenA,
    base,
    body: { isbn: '9780131103627', title, author: 'Kernighan', copies },
  });
}

function pidOf(name: string): number {
  return Number(readFileSync(join(STATE_DIR, 'pids', `${name}.pid`), 'utf8'));
}

const [shardA, shardB] = topology.shards as unknown as [
  (typeof topology.shards)[number],
  (typeof topology.shards)[number],
];
const tenantA = uniqueTenantId('brk-a');
const tenantB = uniqueTenantId('brk-b');
const restores: (() => void)[] = [];
const putters: { close(): void }[] = [];
let tokenA = '';
let tokenB = '';

beforeAll(async () => {
  // these tests watch where reads are routed: keep the read cache out of the way
  restores.push(etcdOverride('cache/enabled', 'false'));
  await cacheEnabledInForce(false);
  await createTenant(tenantA, shardA.id);
  await createTenant(tenantB, shardB.id);
  tokenA = (await registerAndLogin(tenantA, 'lib-a@example.com')).token;
  tokenB = (await registerAndLogin(tenantB, 'lib-b@example.com')).token;
});

afterAll(async () => {
  for (const p of putters) p.close();
  for (const r of restores.reverse()) r();
  removeTenant(tenantA);
  removeTenant(tenantB);
});

describe('circuit breakers with live settings', () => {
  it('a replica slot pointed at a live server gets a fresh breaker within 2 s; a removed shard takes its breakers along', async () => {
    const shard = uniqueTenantId('brk-shard');
    const name = `mysql-replica:${shard}:1`;
    const shardJson = (replicaPort: number) =>
      JSON.stringify({
        master: { host: topology.host, port: shardA.master.port },
        replicas: [{ host: topology.host, port: replicaPort, weight: 1 }],
        database: 'shardgate',
      });
    // port 1: nothing listens there, so the replica's probes fail until its breaker opens
    etcdPut(`shards/${shard}`, shardJson(1));
    try {
      await waitFor(
        async () =>
          (await Promise.all(INSTANCES.map((b) => breaker(b, name)))).every((b) => b?.state === 'open'),
        { timeoutMs: 20_000, intervalMs: 200, what: `${name} open on every instance` },
      );
      etcdPut(`shards/${shard}`, shardJson(shardA.replicas[0]!.port));
      const fixed = Date.now();
      await waitFor(
        async () =>
          (await Promise.all(INSTANCES.map((b) => breaker(b, name)))).every((b) => b?.state === 'closed'),
        { timeoutMs: 2000, intervalMs: 50, what: `a closed ${name} once it names a live replica` },
      );
      expect(Date.now() - fixed).toBeLessThan(2000);
    } finally {
      etcdDel(`shards/${shard}`);
    }
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map(breakersOf))).every(
          (v) => !v.breakers.some((b) => b.name.includes(`:${shard}`)),
        ),
      { timeoutMs: 2000, intervalMs: 50, what: `no breaker of ${shard} left` },
    );
  });

  it('a replica frozen by SIGSTOP trips its breaker; reads move to the master; SIGCONT closes it again', async () => {
    restores.push(etcdOverride('breakers/mysql-replica/call_timeout_ms', '300'));
    restores.push(etcdOverride('breakers/mysql-replica/reset_timeout_ms', '1500'));
    restores.push(etcdOverride('breakers/mysql-replica/failure_threshold', '5'));
    const started = Date.now();
    etcdPut('breakers/mysql-replica/failure_threshold', '2');
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map(breakersOf))).every((all) =>
          all.breakers
            .filter((b) => b.kind === 'mysql-replica')
            .every((b) => b.settings.failure_threshold === 2),
        ),
      { timeoutMs: 2000, intervalMs: 20, what: 'failure_threshold 2 on both instances' },
    );
    expect(Date.now() - started).toBeLessThan(2000);

    const replica = shardA.replicas[0]!;
    const name = `mysql-replica:${shardA.id}:1`; // replicas are numbered from 1 in shards/<id> order
    const base = INSTANCES[0]!;
    expect((await breaker(base, name))?.state).toBe('closed');
    const pid = pidOf(replica.name);
    process.kill(pid, 'SIGSTOP');
    try {
      await waitFor(async () => (await breaker(base, name))?.state === 'open', {
        timeoutMs: 8000,
        intervalMs: 100,
        what: `${name} open`,
      });
      for (let i = 0; i < 5; i++) {
        const r = await api('GET', '/v1/books?limit=5', { tenant: tenantA, base });
        expect(r.status).toBe(200);
        expect(r.headers.get('X-Read-From')).toBe('master');
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    const seen = new Set<string>();
    await waitFor(
      async () => {
        const b = await breaker(base, name);
        if (b) seen.add(b.state);
        return b?.state === 'closed';
      },
      { timeoutMs: 10_000, intervalMs: 50, what: `${name} closed again` },
    );
    // it went through half-open (observed, or implied by the transition back to closed)
    expect([...seen].some((s) => s === 'half_open' || s === 'open')).toBe(true);
    const r = await waitFor(
      async () => {
        const a = await api('GET', '/v1/books?limit=5', { tenant: tenantA, base });
        return a.headers.get('X-Read-From') === 'replica' ? a : undefined;
      },
      { timeoutMs: 8000, what: 'reads back on the replica' },
    );
    expect(r.status).toBe(200);
  });

  it('a SIGKILLed master: 503 + Retry-After in under 50 ms once open; the other shard keeps working; half-open survives a call_timeout_ms change', async () => {
    // reset_timeout_ms: not a multiple of the router's 1 s probe interval (see the half-open spell
    // below)
    await masterBreaker({ failure_threshold: 2, call_timeout_ms: 500, reset_timeout_ms: 3500 });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const book = { isbn: '9780131103627', title: 'K&R', author: 'Kernighan', copies: 1 };
    const pid = pidOf(shardA.master.name);
    process.kill(pid, 'SIGKILL');
    try {
      await waitFor(() => !isAlive(pid), { timeoutMs: 5000, what: 'master gone' });
      // failures until the breaker opens
      await waitFor(
        async () => {
          await api('POST', '/v1/books', { tenant: tenantA, token: tokenA, base, body: book });
          return (await breaker(base, name))?.state === 'open';
        },
        { timeoutMs: 15_000, intervalMs: 50, what: `${name} open` },
      );
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const r = await api('POST', '/v1/books', { tenant: tenantA, token: tokenA, base, body: book });
        const ms = performance.now() - t0;
        expect(r.status).toBe(503);
        expect(Number(r.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
        expect(r.headers.get('Content-Type')).toBe('application/problem+json');
        expect(ms).toBeLessThan(50);
      }
      // registrations too, 8 at once: the password is not hashed (tens of ms of CPU each) for a
      // write that the open breaker refuses anyway. Told by the instance's own CPU, against 8
      // registrations that do hash (tenant B's shard writes), not by latency: on any machine a
      // refusal costs a small fraction of a hash (the latency bound this replaces flaked on a
      // CI host at half speed)
      const register = (tenant: string, prefix: string) =>
        Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            api('POST', '/v1/members', {
              tenant,
              base,
              body: { email: `${prefix}-${i}@example.com`, name: 'N', password: 'password-123' },
            }),
          ),
        );
      const cpu = () => scrapeMetric(base, 'process_cpu_seconds_total');
      const refusedFrom = await cpu();
      const registrations = await register(tenantA, 'dead-master');
      const refusedCpu = (await cpu()) - refusedFrom;
      expect(registrations.map((r) => r.status)).toEqual(Array(8).fill(503));
      const hashedFrom = await cpu();
      const hashed = await register(tenantB, `hashed-${Date.now()}`);
      const hashedCpu = (await cpu()) - hashedFrom;
      expect(hashed.map((r) => r.status)).toEqual(Array(8).fill(201));
      console.log(
        `CPU of 8 registrations: refused ${refusedCpu.toFixed(3)} s, hashed ${hashedCpu.toFixed(3)} s`,
      );
      // refusals that hashed would cost at least what the hashes did; half of it tells them apart
      // with room for a scrape's and a GC's noise (a CI run measured 0.061 s refused against
      // 0.217 s hashed, over the quarter this bound was before)
      expect(refusedCpu, `CPU s of 8 refused registrations; 8 that hashed took ${hashedCpu}`).toBeLessThan(
        hashedCpu / 2,
      );
      // the other shard writes; both shards read
      const w = await api('POST', '/v1/books', { tenant: tenantB, token: tokenB, base, body: book });
      expect(w.status).toBe(201);
      expect((await api('GET', '/v1/books?limit=5', { tenant: tenantB, base })).status).toBe(200);
      const readA = await api('GET', '/v1/books?limit=5', { tenant: tenantA, base });
      expect(readA.status).toBe(200);
      expect(readA.headers.get('X-Read-From')).toBe('replica');
      // a member logs in on the replica's row; a refusal there could be a change the replica
      // has not applied, so a wrong password or an unknown email is a 503, not a 401
      const login = (email: string, password: string) =>
        api('POST', '/v1/auth/login', { tenant: tenantA, base, body: { email, password } });
      const inside = await login('lib-a@example.com', 'correct horse battery');
      expect([inside.status, inside.headers.get('X-Read-From')]).toEqual([200, 'replica']);
      expect(
        (await api('GET', '/v1/members/me', { tenant: tenantA, base, token: inside.json.token })).status,
      ).toBe(200);
      expect((await login('lib-a@example.com', 'not the password')).status).toBe(503);
      expect((await login('nobody@example.com', 'correct horse battery')).status).toBe(503);

      // half-open after reset_timeout_ms; a call_timeout_ms change keeps the state.
      // The shard router probes the master every second through this breaker, and a probe of
      // the dead master opens it again. Once a probe opened it, the reset timer (3.5 s) ends
      // half-way between two probes, so each half-open spell lasts about 500 ms whichever way
      // the timers drift (with 3 s it ended right at a probe: spells of a few ms or of a whole
      // second, by chance). Wait for a spell seen near its start, so the change below lands
      // inside it; the put goes through an etcd client connected beforehand (etcdctl's own
      // start can eat most of the spell).
      const putter = await etcdQuickPutter();
      putters.push(putter);
      // On a busy box the put may apply after the ~500 ms spell ended: a probe of the dead master
      // then opened it again (state `open`, `since` after the spell began), which says nothing of
      // the change; such a try is made again with another spell, up to 3 times. The first spell
      // may be short too: the breaker was opened by a write, not a probe, so its reset timer can
      // end just before a probe (one CI-like run: half-open at .369, a probe reopened it at
      // .402). Any other outcome (closed, or a new half-open spell) is the change resetting the
      // state, and so is an `open` in all three tries.
      for (let attempt = 1; ; attempt++) {
        const half = await waitFor(
          async () => {
            const b = await breaker(base, name);
            const fresh = b?.state === 'half_open' && Date.now() - Date.parse(b.since) < 150;
            return fresh ? b : undefined;
          },
          { timeoutMs: 3 * 3500 + 2000, intervalMs: 20, what: `${name} half-open, seen within 150 ms` },
        );
        const timeout = 700 + attempt;
        await putter.put('breakers/mysql-master/call_timeout_ms', String(timeout));
        const after = await waitFor(
          async () => {
            const b = await breaker(base, name);
            return b?.settings.call_timeout_ms === timeout ? b : undefined;
          },
          { timeoutMs: 2000, intervalMs: 20, what: 'new call_timeout_ms in force' },
        );
        const reopenedByProbe = after.state === 'open' && Date.parse(after.since) > Date.parse(half.since);
        if (reopenedByProbe && attempt < 3) continue;
        expect(after.state).toBe('half_open');
        expect(after.since).toBe(half.since);
        break;
      }
    } finally {
      // bring the master back (the stack runner restarts missing processes)
      execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      // pass or fail, leave the master breakers closed for the test files that run next (a
      // failure here must not hide the test's own; the checks below assert it when it passed)
      await waitFor(
        async () =>
          (await Promise.all(INSTANCES.map((b) => breaker(b, name).catch(() => undefined)))).every(
            (b) => !b || b.state === 'closed',
          ),
        { timeoutMs: 20_000, intervalMs: 200, what: `${name} closed again` },
      ).catch(() => {});
    }
    await waitFor(() => portOpen(shardA.master.port), { timeoutMs: 30_000, what: 'master back' });
    await writesAgain(base, name, book);
  });

  it("a hung master (SIGSTOP), its breaker still closed: token reads check the member on the replica after the master read budget, not the breaker's call timeout", async () => {
    // A token's member check reads the master, else a replica (domain/member-access.ts). Before,
    // each such read waited out the master breaker's call timeout until enough had failed to
    // open it (an outside check: 2 s per `GET /v1/loans`). Here the call timeout is 5 s and the
    // breaker cannot open, so every read that waited for it would take 5 s; now the first waits
    // the master read budget (500 ms) and the next skip the master until a probe answers.
    await masterBreaker({ failure_threshold: 1000, call_timeout_ms: 5000 });
    const base = INSTANCES[0]!;
    const replication = async () =>
      (
        (await (await fetch(`${base}/health/replication`)).json()) as {
          shards: { id: string; master: { unanswered?: string } }[];
        }
      ).shards.find((s) => s.id === shardA.id)!.master;
    // the test before restarted this master: a probe of it answers by now
    await waitFor(async () => (await replication()).unanswered === undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the master answering its probes before the test',
    });
    const pid = pidOf(shardA.master.name);
    const answers: string[] = [];
    let unanswered: string | undefined;
    process.kill(pid, 'SIGSTOP');
    try {
      const until = Date.now() + 3000;
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await api('GET', '/v1/loans', { tenant: tenantA, token: tokenA, base });
        answers.push(`${r.status} ${Math.round(performance.now() - t0)} ms`);
      }
      unanswered = (await replication()).unanswered;
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(
      answers.every((a) => a.startsWith('200 ')),
      answers.join(', '),
    ).toBe(true);
    // 2,500 ms: far above the 500 ms budget on a busy box, half the 5 s call timeout
    expect(
      answers.filter((a) => Number(a.split(' ')[1]) >= 2500),
      answers.join(', '),
    ).toEqual([]);
    expect(answers.length).toBeGreaterThan(3);
    expect(unanswered).toMatch(/^(no answer to a read within 500 ms|probe failed: )/);
    await waitFor(async () => (await replication()).unanswered === undefined, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the master answers its probe again',
    });
  });

  it('a hung master (SIGSTOP): no write waits for the call timeout once the breaker opened, half-open spells included', async () => {
    // before: while half-open, the first callers were the breaker's probes and waited the whole
    // call timeout each time the reset timeout ran out (2 s in 9 of 21 answers, outside check).
    // A write that waits for the hung master ends as `write_outcome_unknown` (its KILL cannot be
    // confirmed) or `dependency_busy`, a refused one as `dependency_unavailable` at once: the
    // answers' codes tell whether a caller waited, however slow the machine (a CI run under load
    // once took 805 ms for a refusal while the breaker was open).
    const CALL_TIMEOUT = 800;
    await masterBreaker({ failure_threshold: 1, call_timeout_ms: CALL_TIMEOUT, reset_timeout_ms: 700 });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const book = { isbn: '9780131103627', title: 'K&R', author: 'Kernighan', copies: 1 };
    const pid = pidOf(shardA.master.name);
    process.kill(pid, 'SIGSTOP');
    const waited: string[] = [];
    const states = new Set<string>();
    const codes: string[] = [];
    try {
      await waitFor(
        async () => {
          const r = await api('POST', '/v1/books', { tenant: tenantA, token: tokenA, base, body: book });
          codes.push(`${r.status} ${(r.json as { code?: string }).code}`);
          return (await breaker(base, name))?.state === 'open';
        },
        { timeoutMs: 15_000, intervalMs: 50, what: `${name} open` },
      );
      // several reset timeouts: the breaker goes half-open, its background trial hangs, it opens
      const until = Date.now() + 4000;
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await api('POST', '/v1/books', { tenant: tenantA, token: tokenA, base, body: book });
        const ms = Math.round(performance.now() - t0);
        expect(r.status).toBe(503);
        expect(Number(r.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
        const state = (await breaker(base, name))?.state ?? 'absent';
        const code = (r.json as { code?: string }).code;
        if (code !== 'dependency_unavailable') waited.push(`${code} after ${ms} ms, then ${state}`);
        states.add(state);
      }
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(waited).toEqual([]);
    expect(states.has('half_open') || states.has('open')).toBe(true);
    // the write that ran into the stopped master could not be confirmed stopped: a stopped
    // server takes no KILL, and runs what its socket holds once it resumes
    expect(codes[0]).toBe('503 write_outcome_unknown');
    await writesAgain(base, name, book);
  });

  // 2000 ms (the default): MariaDB ends a disconnected client waiting on the backup lock at the
  // next whole second of its wait, so an abandoned write's thread is mostly gone when the kill
  // looks for it; that once counted as "not stuck", and the breaker closed under the lock
  it.each([
    800, 2000,
  ])('a master that hangs only on writes (global read lock) opens its breaker although its probes answer; then no caller write waits, and it closes after UNLOCK with no write (call_timeout_ms %i)', async (CALL_TIMEOUT) => {
    // before: the master's position probe (every second) succeeded between the writes that timed
    // out, the count of consecutive failures started again each time, and every write waited the
    // whole call timeout for as long as the lock was held (48 writes of 2 s in an outside check).
    // Then: half-open, callers' writes probed it (one waited the call timeout per spell), and an
    // instance that got no write stayed half_open. Now background write trials probe it.
    const RESET = 1500;
    await masterBreaker({
      failure_threshold: 3,
      call_timeout_ms: CALL_TIMEOUT,
      reset_timeout_ms: RESET,
      half_open_max_calls: 1,
    });
    const name = `mysql-master:${shardA.id}`;
    const prefix = `ftwrl-${Date.now()}`;
    const lock = await rootConnection(shardA.master.port);
    const answers: { status: number; code?: string; ms: number; title: string; state: string }[] = [];
    let i = 0;
    const write = async (base: string) => {
      const title = `${prefix}-${i++}`;
      const t0 = performance.now();
      const r = await postBook(base, title);
      const ms = performance.now() - t0;
      const state = (await breaker(base, name))?.state ?? 'absent';
      answers.push({ status: r.status, code: (r.json as { code?: string }).code, ms, title, state });
      if (r.status === 503) expect(Number(r.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
    };
    let opening = 0;
    try {
      await lock.query('FLUSH TABLES WITH READ LOCK');
      // the master's position probes (every second) keep answering all along; 3 hung writes
      // open the breaker of each instance (a write whose thread was seen on its way out, ended by
      // the server, once counted as not hung: a CI run at 2000 ms needed a fourth)
      for (const base of INSTANCES) {
        for (let k = 0; k < 3; k++) await write(base);
        expect((await breaker(base, name))?.state, base).toBe('open');
      }
      opening = answers.length;
      // then writes through one instance across several half-open spells, each tried by a
      // background write trial that hangs on the lock and opens the breaker again
      const until = Date.now() + 2 * (RESET + CALL_TIMEOUT) + 1000;
      while (Date.now() < until) await write(INSTANCES[0]!);
    } finally {
      await lock.query('UNLOCK TABLES').finally(() => lock.end());
    }
    expect(answers.every((a) => a.status === 503)).toBe(true);
    // the writes that opened it waited, and were killed on the server before their 503
    expect(answers.slice(0, opening).every((a) => a.ms >= CALL_TIMEOUT)).toBe(true);
    // (`dependency_unavailable` when the kill found the statement and interrupted it, else
    // `write_outcome_unknown`; none applied either way, see the rows below)
    const codes = answers.slice(0, opening).map((a) => a.code);
    expect(codes.filter((c) => c !== 'dependency_unavailable' && c !== 'write_outcome_unknown')).toEqual([]);
    if (CALL_TIMEOUT === 800) expect(codes).toContain('dependency_unavailable');
    // once open, no caller's write waited, half-open spells included
    const after = answers.slice(opening);
    expect(after.length).toBeGreaterThan(10);
    expect(after.filter((a) => a.ms >= CALL_TIMEOUT / 2)).toEqual([]);
    expect(after.some((a) => a.state === 'half_open')).toBe(true);
    expect(after.some((a) => a.state === 'open')).toBe(true);
    // with no write from any caller, every instance's breaker closes once the lock is gone
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((b) => breaker(b, name)))).every((b) => b?.state === 'closed'),
      {
        timeoutMs: RESET + CALL_TIMEOUT + 5000,
        intervalMs: 100,
        what: `${name} closed on every instance, with no write`,
      },
    );
    // by the write trials: each instance's row in breaker_probes, written after the lock went
    const probes = await rootQuery<{ probe_id: string }>(
      shardA.master.port,
      'SELECT probe_id FROM breaker_probes WHERE probed_at >= NOW(3) - INTERVAL 10 SECOND',
    );
    expect(probes.map((p) => p.probe_id).sort()).toEqual(
      expect.arrayContaining(topology.apis.map((a) => a.id)),
    );
    await writesAgain(INSTANCES[0]!, name, {
      isbn: '9780131103627',
      title: `${prefix}-after`,
      author: 'K',
      copies: 1,
    });
    // the writes abandoned at the call timeout were rolled back when the lock went, not committed
    await new Promise((r) => setTimeout(r, 1000));
    const rows = await rootQuery<{ title: string }>(
      shardA.master.port,
      'SELECT title FROM books WHERE tenant_id = ? AND title LIKE ?',
      [tenantA, `${prefix}-%`],
    );
    expect(rows.map((r) => r.title)).toEqual([`${prefix}-after`]);
  });

  it("a DDL queued for a table's metadata lock stops the writes to that table; while other tables' writes commit, the master breaker stays closed", async () => {
    // an outside check: an ALTER TABLE books waiting 11 s behind an open transaction opened the
    // master breaker of the shard for every tenant ("5 write(s) in a row timed out"), and
    // registrations, which never touch books, were refused 32 of 49 times. A write seen waiting
    // for its table's lock is the node's, not server-wide: another write's commit excuses it
    const CALL_TIMEOUT = 800;
    await masterBreaker({ failure_threshold: 3, call_timeout_ms: CALL_TIMEOUT });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const prefix = `mdl-${Date.now()}`;
    const [{ comment }] = (await rootQuery<{ comment: string }>(
      shardA.master.port,
      "SELECT TABLE_COMMENT AS comment FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = 'books'",
      [topology.database],
    )) as [{ comment: string }];
    const books: { title: string; status: number; code?: string }[] = [];
    const members: number[] = [];
    const states: string[] = [];
    const holder = await rootConnection(shardA.master.port);
    try {
      const ddl = await rootConnection(shardA.master.port);
      let altered: Promise<unknown> = Promise.resolve();
      try {
        await holder.query('BEGIN');
        await holder.query('SELECT id FROM books LIMIT 1');
        await ddl.query('SET SESSION lock_wait_timeout = 30');
        altered = ddl.query("ALTER TABLE books COMMENT = 'shardgate breakers test'").catch((e: unknown) => e);
        await waitFor(
          async () =>
            (
              await rootQuery<{ n: number }>(
                shardA.master.port,
                "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE ID = ? AND STATE = 'Waiting for table metadata lock'",
                [ddl.threadId],
              )
            )[0]!.n > 0,
          { timeoutMs: 5000, what: 'the ALTER waiting for the metadata lock' },
        );
        // each book write waits behind the ALTER while a registration (no book) commits beside it
        for (let k = 0; k < 5; k++) {
          const title = `${prefix}-${k}`;
          const [book, member] = await Promise.all([
            postBook(base, title),
            api('POST', '/v1/members', {
              tenant: tenantA,
              base,
              body: { email: `${prefix}-${k}@example.com`, name: 'M', password: 'correct horse battery' },
            }),
          ]);
          books.push({ title, status: book.status, code: (book.json as { code?: string }).code });
          if (book.status === 503) expect(Number(book.headers.get('Retry-After'))).toBeGreaterThanOrEqual(1);
          members.push(member.status);
          states.push((await breaker(base, name))?.state ?? 'absent');
        }
      } finally {
        await holder.query('ROLLBACK').catch(() => {});
        await altered;
        await ddl.query('ALTER TABLE books COMMENT = ?', [comment]).finally(() => ddl.end());
      }
    } finally {
      await holder.end();
    }
    expect(states).toEqual(['closed', 'closed', 'closed', 'closed', 'closed']);
    // every book write waited behind the ALTER, was stopped, and answered a 503
    expect(books.map((b) => b.status)).toEqual([503, 503, 503, 503, 503]);
    expect(
      books.filter((b) => b.code !== 'dependency_unavailable' && b.code !== 'write_outcome_unknown'),
    ).toEqual([]);
    expect(members).toEqual([201, 201, 201, 201, 201]);
    // "not applied" is never contradicted by a row
    await new Promise((r) => setTimeout(r, 500));
    const rows = await rootQuery<{ title: string }>(
      shardA.master.port,
      'SELECT title FROM books WHERE tenant_id = ? AND title LIKE ?',
      [tenantA, `${prefix}-%`],
    );
    const applied = new Set(rows.map((r) => r.title));
    expect(books.filter((b) => b.code === 'dependency_unavailable' && applied.has(b.title))).toEqual([]);
  });

  it('writes a stopped master commits when it resumes, after their call timeout: a 201 when the commit came within the grace, never "not applied" for a row that exists', async () => {
    // the writes wait behind a global read lock; the master is stopped with an UNLOCK queued in
    // its socket; the writes' call timeouts fire and their KILLs wait for the master; on SIGCONT
    // it unlocks and commits the writes before it takes the KILLs. A KILL that finds such a
    // thread idle must not count as "stopped" (an outside check saw 2 such 503s
    // dependency_unavailable whose rows existed; beforeCommit's unit test has the states)
    const CALL_TIMEOUT = 800;
    await masterBreaker({ failure_threshold: 50, call_timeout_ms: CALL_TIMEOUT });
    const base = INSTANCES[0]!;
    const prefix = `resumed-${Date.now()}`;
    const pid = pidOf(shardA.master.name);
    const answers: { title: string; answer: string }[] = [];
    for (let round = 0; round < 3; round++) {
      const lock = await rootConnection(shardA.master.port);
      await lock.query('FLUSH TABLES WITH READ LOCK');
      let unlocked: Promise<unknown> = Promise.resolve();
      let writes: Promise<void>[] = [];
      try {
        writes = [0, 1, 2, 3].map(async (i) => {
          const title = `${prefix}-${round}-${i}`;
          const r = await postBook(base, title);
          answers.push({ title, answer: `${r.status} ${(r.json as { code?: string }).code ?? ''}`.trim() });
        });
        await new Promise((r) => setTimeout(r, 300));
        process.kill(pid, 'SIGSTOP');
        unlocked = lock.query('UNLOCK TABLES');
        // resume after the call timeouts, within the grace the API gives the KILLs
        await new Promise((r) => setTimeout(r, CALL_TIMEOUT - 300 + 250));
      } finally {
        process.kill(pid, 'SIGCONT');
        await unlocked.finally(() => lock.end());
      }
      await Promise.all(writes);
    }
    const rows = await rootQuery<{ title: string }>(
      shardA.master.port,
      'SELECT title FROM books WHERE tenant_id = ? AND title LIKE ?',
      [tenantA, `${prefix}-%`],
    );
    const applied = new Set(rows.map((r) => r.title));
    // an answer that says "not applied" is never contradicted by a row, and a 201 has its row
    expect(answers.filter((a) => a.answer === '503 dependency_unavailable' && applied.has(a.title))).toEqual(
      [],
    );
    expect(answers.filter((a) => a.answer === '201' && !applied.has(a.title))).toEqual([]);
    expect(answers).toHaveLength(12);
  });

  it('a master set read_only by hand: its breaker opens on the refused writes and stays open while writes would fail, and its reads pass it; closed again once writable', async () => {
    const RESET = 600;
    await masterBreaker({ failure_threshold: 3, reset_timeout_ms: RESET });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const states: string[] = [];
    const answers: string[] = [];
    const reads: string[] = [];
    let writesOnly: boolean | undefined;
    // the shard's reads go to its master (its replica weighted 0), as when the replica is excluded
    const shardKey = `shards/${shardA.id}`;
    const map = JSON.parse(etcdGet(shardKey)!) as { replicas: { weight?: number }[] };
    const restoreMap = etcdOverride(
      shardKey,
      JSON.stringify({ ...map, replicas: map.replicas.map((r) => ({ ...r, weight: 0 })) }),
    );
    restores.push(restoreMap);
    await waitFor(
      async () => {
        const r = await api('GET', '/v1/books?limit=1', { tenant: tenantA, base });
        return r.headers.get('X-Read-From') === 'master';
      },
      { timeoutMs: 5000, what: 'reads of the shard on its master' },
    );
    await rootQuery(shardA.master.port, 'SET GLOBAL read_only = 1');
    try {
      await waitFor(
        async () => {
          const r = await postBook(base, 'read-only');
          answers.push(`${r.status} ${(r.json as { code?: string }).code}`);
          return (await breaker(base, name))?.state === 'open';
        },
        { timeoutMs: 10_000, intervalMs: 50, what: `${name} open` },
      );
      expect((await breakersOf(base)).breakers.find((b) => b.name === name)).toBeDefined();
      // several reset timeouts, callers writing and reading all along: before, the half-open
      // read trial closed it within 50 ms each time (10 s of failing writes under a closed breaker)
      const until = Date.now() + 5 * RESET;
      while (Date.now() < until) {
        const [w, r] = await Promise.all([
          postBook(base, 'read-only'),
          api('GET', '/v1/books?limit=1', { tenant: tenantA, base }),
        ]);
        answers.push(`${w.status} ${(w.json as { code?: string }).code}`);
        reads.push(`${r.status} ${r.headers.get('X-Read-From')}`);
        states.push((await breaker(base, name))?.state ?? 'none');
        await new Promise((r) => setTimeout(r, 50));
      }
      writesOnly = (await breaker(base, name))?.writesOnly;
    } finally {
      await rootQuery(shardA.master.port, 'SET GLOBAL read_only = 0');
      restoreMap();
    }
    expect(states).not.toContain('closed');
    expect(states).toContain('open');
    // the reads answered from the master all along, its breaker open for writes or not (before:
    // refused 503 for each open spell)
    expect(reads.filter((r) => r !== '200 master')).toEqual([]);
    expect(writesOnly).toBe(true); // said at /health/circuit-breakers
    // refused, never applied: each says so
    expect(answers.filter((a) => a !== '503 dependency_unavailable')).toEqual([]);
    const books = await rootQuery<{ n: number }>(
      shardA.master.port,
      "SELECT COUNT(*) AS n FROM books WHERE tenant_id = ? AND title = 'read-only'",
      [tenantA],
    );
    expect(Number(books[0]?.n)).toBe(0);
    await writesAgain(base, name, { isbn: '9780131103627', title: 'writable', author: 'K', copies: 1 });
  });

  it('writes that wait on a row lock past the call timeout do not open the master breaker for the whole shard', async () => {
    const CALL_TIMEOUT = 800;
    await masterBreaker({ failure_threshold: 3, call_timeout_ms: CALL_TIMEOUT });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const created = await postBook(base, `rowlock-${Date.now()}`, 5);
    expect(created.status).toBe(201);
    const bookId = (created.json as { id: string }).id;
    const lock = await rootConnection(shardA.master.port);
    const answers: string[] = [];
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT id FROM books WHERE tenant_id = ? AND id = ? FOR UPDATE', [tenantA, bookId]);
      const borrow = async () => {
        const r = await api('POST', '/v1/loans', { tenant: tenantA, token: tokenA, base, body: { bookId } });
        answers.push(`${r.status} ${(r.json as { code?: string }).code}`);
        if (r.status === 503) expect(r.headers.get('Retry-After')).toBe('1');
      };
      // more borrows than failure_threshold, one after the other: each waits for the row lock
      for (let i = 0; i < 4; i++) await borrow();
      // and more at once than the instance has connections to the master (10): those beyond wait
      // for a connection and are never sent. Before, 5 at once opened the breaker, and then, once
      // that was fixed, the ones waiting for a connection did (outside checks)
      await Promise.all(Array.from({ length: 15 }, borrow));
      // the shard's other rows are writable all along: the breaker is still closed
      expect((await breaker(base, name))?.state).toBe('closed');
      expect((await postBook(base, 'another')).status).toBe(201);
    } finally {
      await lock.query('ROLLBACK').finally(() => lock.end());
    }
    // killed on the server while waiting for the row, or never sent: not applied, and the
    // answer says so. (One that got its connection as the ones ahead were killed, and was seen
    // idle by its own kill, cannot be told from one that ran to its COMMIT: `write_outcome_unknown`;
    // none applied, see the count below)
    expect(answers.slice(0, 4)).toEqual(Array(4).fill('503 write_contended'));
    const burst = answers.slice(4);
    const told = new Set(['503 write_contended', '503 dependency_busy', '503 write_outcome_unknown']);
    expect(burst.filter((a) => !told.has(a))).toEqual([]);
    expect(burst.filter((a) => a === '503 write_contended').length).toBeGreaterThanOrEqual(5);
    const loans = await rootQuery<{ n: number }>(
      shardA.master.port,
      'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ? AND book_id = ?',
      [tenantA, bookId],
    );
    expect(Number(loans[0]?.n)).toBe(0);
    const after = await api('POST', '/v1/loans', { tenant: tenantA, token: tokenA, base, body: { bookId } });
    expect(after.status).toBe(201);
  });

  it('a steady stream of writes to a locked row (15 a second) does not open the master breaker either', async () => {
    const CALL_TIMEOUT = 800;
    await masterBreaker({ failure_threshold: 3, call_timeout_ms: CALL_TIMEOUT });
    const base = INSTANCES[0]!;
    const name = `mysql-master:${shardA.id}`;
    const created = await postBook(base, `rowlock-stream-${Date.now()}`, 5);
    expect(created.status).toBe(201);
    const bookId = (created.json as { id: string }).id;
    const lock = await rootConnection(shardA.master.port);
    const answers: string[] = [];
    const states = new Set<string>();
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT id FROM books WHERE tenant_id = ? AND id = ? FOR UPDATE', [tenantA, bookId]);
      // each abandoned borrow's kill reads INNODB_TRX: at this rate InnoDB never refreshes that
      // snapshot (it does after 100 ms without a read), and the borrows that began since were not
      // listed in it. Before, they were taken for a stuck master and opened its breaker
      const borrows: Promise<void>[] = [];
      const until = Date.now() + 6000;
      while (Date.now() < until) {
        borrows.push(
          api('POST', '/v1/loans', { tenant: tenantA, token: tokenA, base, body: { bookId } }).then((r) => {
            answers.push(`${r.status} ${(r.json as { code?: string }).code}`);
          }),
        );
        states.add((await breaker(base, name))?.state ?? 'none');
        await new Promise((r) => setTimeout(r, 66));
      }
      await Promise.all(borrows);
      states.add((await breaker(base, name))?.state ?? 'none');
    } finally {
      await lock.query('ROLLBACK').finally(() => lock.end());
    }
    expect([...states]).toEqual(['closed']);
    const told = new Set(['503 write_contended', '503 dependency_busy', '503 write_outcome_unknown']);
    expect(answers.filter((a) => !told.has(a))).toEqual([]);
    expect(answers.filter((a) => a === '503 write_contended').length).toBeGreaterThanOrEqual(20);
    const loans = await rootQuery<{ n: number }>(
      shardA.master.port,
      'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ? AND book_id = ?',
      [tenantA, bookId],
    );
    expect(Number(loans[0]?.n)).toBe(0);
  }, 30_000);
});
