/**
 * `npx tsx bench/cost.ts [scenario-key …]` (default: book-hit loans) — what one request of a
 * scenario costs in CPU, per process of the stack, measured at a light load (a closed loop of
 * `BENCH_COST_CONNECTIONS`, default 2, through HAProxy) so the machine is not saturated and the
 * numbers are not inflated by waiting for a core. Needs the local stack up.
 *
 * The email pipeline works behind the API (outbox → RabbitMQ → SMTP); after the load stops the
 * run waits until the worker has relayed the outbox and its deliveries stand still, and counts
 * that CPU too, so a write's cost includes its email (the idle second at the end adds a little).
 * Prints ms of CPU per request by process group and in total; the total bounds the rate of the
 * 2-core box: `cores × 1000 / total ms` requests/s with nothing else running. Beside each part:
 * how long its threads were ready to run but waited for a core, per request (cpu-usage.ts).
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { CACHE_KEYS, drainOutbox, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { costLines, perRequestMs, STACK_PARTS, totalMs, waitPerRequestMs } from './cost-parts.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { closedLoop } from './load.js';
import { git } from './machine.js';
import { writeResultFile } from './result-file.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_COST_CONNECTIONS ?? 2);

async function main(): Promise<void> {
  await preflight();
  const keys = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['book-hit', 'loans'];
  const tag = runTag();
  const restoreCache = await remember(CACHE_KEYS);
  const out: Record<string, unknown> = {};
  try {
    console.log(`cost of ${keys.join(', ')}: ${CONNECTIONS} connections, ${SECONDS} s each; setup …`);
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const all = scenarios(fixtures);
    for (const key of keys) {
      const s = apiScenario(all, key);
      if (s.cache !== undefined) await setCache(s.cache, hotBookRequest(fixtures), INSTANCES, s.near);
      await closedLoop(HAPROXY, s.steps, { connections: CONNECTIONS, seconds: 1 });
      await drainOutbox(); // the warm-up's emails go out before measuring
      const cpu0 = snapshot();
      const r = await closedLoop(HAPROXY, s.steps, { connections: CONNECTIONS, seconds: SECONDS });
      // the run's emails are sent before the window closes, so their CPU is counted
      await drainOutbox();
      const cpu1 = snapshot();
      const cpu = cpuBetween(cpu0, cpu1);
      const n = r.requests;
      const perRequest = perRequestMs(cpu, (cpu1.at - cpu0.at) / 1000, n, STACK_PARTS);
      const waited = waitPerRequestMs(cpu, (cpu1.at - cpu0.at) / 1000, n, STACK_PARTS);
      console.log(
        `\n== ${s.name}: ${n} requests at ${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(1)} ms, ${r.errors} errors`,
      );
      for (const line of costLines(perRequest, cpus().length, waited)) console.log(line);
      out[key] = {
        requests: n,
        rps: r.rps,
        p50: r.p50,
        p99: r.p99,
        errors: r.errors,
        perRequestMs: perRequest,
        ...(waited ? { waitedPerRequestMs: waited } : {}),
        totalMs: totalMs(perRequest),
      };
    }
    const date = new Date().toISOString();
    const sha = git().sha;
    const file = writeResultFile(
      join(REPO_ROOT, 'bench', 'results'),
      { date, sha, suffix: '-cost' },
      { date, git: sha, connections: CONNECTIONS, results: out },
    );
    console.log(`\nwritten to ${file}`);
  } finally {
    await restoreCache();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(`cost failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
