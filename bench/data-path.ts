/**
 * `npx tsx bench/data-path.ts` — the borrow + return write path WITHOUT HTTP: this process runs
 * the domain's `borrowBook` / `returnLoan` over the API's own data services (SqlDataAccess on
 * mysql2 pools and the shard router, built by `createDataServices` from the live etcd config, as
 * src/entry/node.ts builds them) against the stack's masters, with the `loans` scenario's
 * fixtures, tenants and in-flight count (BENCH_DATA_PATH_IN_FLIGHT, default 32).
 *
 * What it answers: how many durable writes per second this box allows when no HTTP server, JSON,
 * JWT check, HAProxy or load generator takes a share — the masters, the replicas and (unless
 * BENCH_MAIL_OFF=1) the email pipeline with one client that costs only the data layer. That rate
 * bounds what any change to the API's HTTP side could reach. Prints the rate, p50/p99 and ms of
 * CPU per write by part of the stack (bench/cost-parts.ts; "data client" is this process);
 * JSON to bench/results/<date>-<sha>-data-path[-mail-off].json (bench/result-file.ts).
 *
 * Like bench/cost.ts, the window closes only after the worker relayed the outbox and delivered
 * the window's mails, so a write's email is in its cost. With BENCH_MAIL_OFF=1 the worker is
 * stopped for the window (the outbox keeps every mail) and started again after it; the stack is
 * left as it was found. Needs the local stack up.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { createDataServices } from '../src/db/create-data-services.js';
import type { TenantRef } from '../src/domain/data-access.js';
import { borrowBook, returnLoan } from '../src/domain/loans.js';
import type { Principal } from '../src/domain/member-tokens.js';
import { parseEnv } from '../src/env.js';
import { createLogger } from '../src/observability/logger.js';
import { createPromMetrics } from '../src/observability/prom-metrics.js';
import { BreakerRegistry } from '../src/resilience/breaker-registry.js';
import { REPO_ROOT } from '../stack/paths.js';
import { stopProcess } from '../stack/process-manager.js';
import { up } from '../stack/stack.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { drainOutbox, HAPROXY, INSTANCES, preflight } from './api-state.js';
import { costLines, type Parts, perRequestMs, STACK_PARTS, totalMs } from './cost-parts.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel } from './etcd.js';
import { percentile } from './load.js';
import { git, machine } from './machine.js';
import { writeResultFile } from './result-file.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const IN_FLIGHT = Number(process.env.BENCH_DATA_PATH_IN_FLIGHT ?? 32);
const MAIL_OFF = process.env.BENCH_MAIL_OFF === '1';

/** the stack's parts, with this process as the data client instead of a load generator */
const PARTS: Parts = Object.fromEntries(
  Object.entries(STACK_PARTS).map(([part, names]) =>
    part === 'load generator' ? ['data client', names] : [part, names],
  ),
);

interface Lender {
  tenant: TenantRef;
  book: string;
  principals: Principal[];
}

interface Window {
  writes: number;
  failures: Record<string, number>;
  latencies: number[];
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;

/** `inFlight` loops of borrow-then-return pairs until `until`; each write timed and counted, failed or not */
async function lend(
  data: Parameters<typeof borrowBook>[0],
  lenders: readonly Lender[],
  inFlight: number,
  until: number,
): Promise<Window> {
  const w: Window = { writes: 0, failures: {}, latencies: [] };
  const timed = async <T>(
    fn: () => Promise<{ result: { ok: true; value: T } | { ok: false; code: string } }>,
  ) => {
    const t0 = performance.now();
    const failed = (code: string) => {
      w.failures[code] = (w.failures[code] ?? 0) + 1;
      return undefined;
    };
    try {
      const { result } = await fn();
      return result.ok ? result.value : failed(result.code);
    } catch (error) {
      // a dependency error (breaker open, lost connection) counts, by name, and the loop goes on
      return failed(error instanceof Error ? error.name : 'thrown');
    } finally {
      w.latencies.push(performance.now() - t0);
      w.writes++;
    }
  };
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (performance.now() < until) {
        const { tenant, book, principals } = pick(lenders);
        const principal = pick(principals);
        const loan = await timed(() => borrowBook(data, tenant, principal, book));
        if (loan && performance.now() < until)
          await timed(() => returnLoan(data, tenant, principal, loan.id));
      }
    }),
  );
  return w;
}

async function main(): Promise<void> {
  await preflight();
  const tag = runTag();
  const env = parseEnv({ ...process.env, ...stackEnv() }, { require: ['SHARDGATE_JWT_SECRET'] });
  const logger = createLogger({ level: 'warn', base: { instance: 'bench-data-path' } });
  const etcd = createEtcdClient({ endpoints: env.SHARDGATE_ETCD_ENDPOINTS });
  const config = new EtcdConfigStore({ client: etcd, prefix: env.SHARDGATE_ETCD_PREFIX, logger });
  const metrics = createPromMetrics();
  const breakers = new BreakerRegistry({ config, logger, metrics });
  const data = createDataServices({ env, processEnv: process.env, config, logger, breakers, metrics });
  let workerStopped = false;
  try {
    console.log(
      `data path: borrow + return in-process, ${IN_FLIGHT} in flight, ${SECONDS} s` +
        `${MAIL_OFF ? ', email worker stopped' : ''}; setup …`,
    );
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    await config.start(); // after the fixtures: their tenants are in the directory it reads
    const { memberTokens, data: access } = data.services;
    const lenders: Lender[] = await Promise.all(
      fixtures.lenders.map(async (t) => {
        const tenant = config.current().tenants.get(t.id);
        if (!tenant) throw new Error(`tenant ${t.id} is not in the live config`);
        const principals = await Promise.all(
          t.members.map(async (m) => {
            const check = await memberTokens.verify(m.token);
            if (!check.ok) throw new Error(`the token of member ${m.id} does not verify: ${check.reason}`);
            return check.principal;
          }),
        );
        return {
          tenant: { id: t.id, shardId: tenant.shard, name: tenant.name },
          book: t.books[0]!,
          principals,
        };
      }),
    );
    if (MAIL_OFF) {
      workerStopped = true;
      await stopProcess(topology.worker.name);
    }
    await lend(access, lenders, IN_FLIGHT, performance.now() + 1000); // pools, JIT
    if (!MAIL_OFF) await drainOutbox(); // the warm-up's mails go out before measuring
    const cpu0 = snapshot();
    const t0 = performance.now();
    const w = await lend(access, lenders, IN_FLIGHT, t0 + SECONDS * 1000);
    const seconds = (performance.now() - t0) / 1000;
    // with the worker running, the window's mails are sent before it closes, so their CPU counts
    if (!MAIL_OFF) await drainOutbox();
    const cpu1 = snapshot();
    const perWrite = perRequestMs(cpuBetween(cpu0, cpu1), (cpu1.at - cpu0.at) / 1000, w.writes, PARTS);
    const sorted = w.latencies.sort((a, b) => a - b);
    const rate = w.writes / seconds;
    const failed = Object.values(w.failures).reduce((a, b) => a + b, 0);
    console.log(
      `\n== borrow + return in-process${MAIL_OFF ? ', email worker stopped' : ''}: ${w.writes} writes at ` +
        `${rate.toFixed(0)}/s, p50 ${percentile(sorted, 0.5).toFixed(2)} ms, p99 ` +
        `${percentile(sorted, 0.99).toFixed(2)} ms, ${failed} failed${failed ? ` ${JSON.stringify(w.failures)}` : ''}`,
    );
    for (const line of costLines(perWrite, cpus().length)) console.log(line);
    const date = new Date().toISOString();
    const { sha, dirty } = git();
    const file = writeResultFile(
      join(REPO_ROOT, 'bench', 'results'),
      { date, sha, suffix: MAIL_OFF ? '-data-path-mail-off' : '-data-path' },
      {
        date,
        git: sha,
        dirty,
        machine: machine(),
        inFlight: IN_FLIGHT,
        seconds: SECONDS,
        mailOff: MAIL_OFF,
        writes: w.writes,
        rate,
        p50: percentile(sorted, 0.5),
        p99: percentile(sorted, 0.99),
        failures: w.failures,
        perWriteMs: perWrite,
        totalMs: totalMs(perWrite),
      },
    );
    console.log(`\nwritten to ${file}`);
  } finally {
    if (workerStopped) await up({ log: () => {} });
    await data.close();
    await config.close();
    etcd.close();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(
    `data-path failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
