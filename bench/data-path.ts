/**
 * `npx tsx bench/data-path.ts` — the borrow + return write path WITHOUT HTTP
 * (bench/in-process-writes.ts: the domain over the API's own data services, in this process),
 * with the `loans` scenario's fixtures, tenants and in-flight count (BENCH_DATA_PATH_IN_FLIGHT,
 * default 32), and where each write's CPU goes.
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
import { REPO_ROOT } from '../stack/paths.js';
import { stopProcess } from '../stack/process-manager.js';
import { up } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import { drainOutbox, HAPROXY, INSTANCES, preflight } from './api-state.js';
import { costLines, type Parts, perRequestMs, STACK_PARTS, totalMs, waitPerRequestMs } from './cost-parts.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel } from './etcd.js';
import { openInProcessWrites } from './in-process-writes.js';
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

async function main(): Promise<void> {
  await preflight();
  const tag = runTag();
  let workerStopped = false;
  let writes: Awaited<ReturnType<typeof openInProcessWrites>> | undefined;
  try {
    console.log(
      `data path: borrow + return in-process, ${IN_FLIGHT} in flight, ${SECONDS} s` +
        `${MAIL_OFF ? ', email worker stopped' : ''}; setup …`,
    );
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    writes = await openInProcessWrites(fixtures.lenders);
    if (MAIL_OFF) {
      workerStopped = true;
      await stopProcess(topology.worker.name);
    }
    await writes.run({ inFlight: IN_FLIGHT, seconds: 1 }); // pools, JIT
    if (!MAIL_OFF) await drainOutbox(); // the warm-up's mails go out before measuring
    const cpu0 = snapshot();
    const r = await writes.run({ inFlight: IN_FLIGHT, seconds: SECONDS });
    // with the worker running, the window's mails are sent before it closes, so their CPU counts
    if (!MAIL_OFF) await drainOutbox();
    const cpu1 = snapshot();
    const cpu = cpuBetween(cpu0, cpu1);
    const perWrite = perRequestMs(cpu, (cpu1.at - cpu0.at) / 1000, r.requests, PARTS);
    const waited = waitPerRequestMs(cpu, (cpu1.at - cpu0.at) / 1000, r.requests, PARTS);
    console.log(
      `\n== borrow + return in-process${MAIL_OFF ? ', email worker stopped' : ''}: ${r.requests} writes at ` +
        `${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, ${r.errors} failed` +
        `${r.errors ? ` ${JSON.stringify(r.statusCodes)}` : ''}`,
    );
    for (const line of costLines(perWrite, cpus().length, waited)) console.log(line);
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
        writes: r.requests,
        rate: r.rps,
        p50: r.p50,
        p99: r.p99,
        failures: r.statusCodes,
        perWriteMs: perWrite,
        totalMs: totalMs(perWrite),
        ...(waited ? { waitedPerWriteMs: waited } : {}),
      },
    );
    console.log(`\nwritten to ${file}`);
  } finally {
    if (workerStopped) await up({ log: () => {} });
    await writes?.close();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(
    `data-path failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
