/**
 * `npx tsx bench/cost.ts [scenario-key …]` (default: book-hit loans) — what one request of a
 * scenario costs in CPU, per process of the stack, measured at a light load (a closed loop of
 * `BENCH_COST_CONNECTIONS`, default 2, through HAProxy) so the machine is not saturated and the
 * numbers are not inflated by waiting for a core. Needs the local stack up.
 *
 * The email pipeline works behind the API (outbox → RabbitMQ → SMTP); after the load stops the
 * run waits until the worker has relayed the outbox and its deliveries stand still, and counts
 * that CPU too, so a write's cost includes its email (the idle second at the end adds a little). Prints ms of CPU per request by process group and in total; the total
 * bounds the rate of the 2-core box: `2000 / total ms` requests/s with nothing else running.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { CACHE_KEYS, drainOutbox, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { closedLoop } from './load.js';
import { git } from './machine.js';
import { hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = Number(process.env.BENCH_COST_CONNECTIONS ?? 2);

/** process groups of cpu-usage.ts, folded into the parts a reader compares */
const PARTS: Record<string, string[]> = {
  api: ['api-1', 'api-2'],
  haproxy: ['haproxy'],
  'mariadb masters': ['shard-1-master', 'shard-2-master'],
  'mariadb replicas': ['shard-1-replica', 'shard-2-replica'],
  redis: ['redis'],
  'email worker': ['email-worker'],
  rabbitmq: ['rabbitmq'],
  'smtp sink': ['smtp-sink'],
  'load generator': ['bench'],
};

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
      const s = all.find((x) => x.key === key);
      if (!s || s.kind === 'ceiling') throw new Error(`no API scenario "${key}"`);
      if (s.cache !== undefined) await setCache(s.cache, hotBookRequest(fixtures), INSTANCES, s.near);
      await closedLoop(HAPROXY, s.steps, { connections: CONNECTIONS, seconds: 1 });
      await drainOutbox(); // the warm-up's emails go out before measuring
      const cpu0 = snapshot();
      const r = await closedLoop(HAPROXY, s.steps, { connections: CONNECTIONS, seconds: SECONDS });
      // the run's emails are sent before the window closes, so their CPU is counted
      await drainOutbox();
      const cpu1 = snapshot();
      const cpu = cpuBetween(cpu0, cpu1);
      const elapsed = (cpu1.at - cpu0.at) / 1000;
      const n = r.requests;
      // % of a core over the window → ms of CPU per request
      const perReq = (pct: number) => (n > 0 ? +(((pct / 100) * elapsed * 1000) / n).toFixed(3) : 0);
      const perRequest: Record<string, number> = {};
      for (const [part, names] of Object.entries(PARTS)) {
        perRequest[part] = perReq(names.reduce((sum, name) => sum + (cpu.processes[name] ?? 0), 0));
      }
      perRequest.other = perReq(cpu.other);
      const total = Object.values(perRequest).reduce((a, b) => a + b, 0);
      console.log(
        `\n== ${s.name}: ${n} requests at ${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} ms, ${r.errors} errors`,
      );
      for (const [part, ms] of Object.entries(perRequest))
        console.log(`  ${part.padEnd(18)} ${ms.toFixed(3)} ms`);
      console.log(
        `  ${'total'.padEnd(18)} ${total.toFixed(3)} ms CPU per request → at most ${(2000 / total).toFixed(0)}/s on 2 cores`,
      );
      out[key] = {
        requests: n,
        rps: r.rps,
        p50: r.p50,
        errors: r.errors,
        perRequestMs: perRequest,
        totalMs: total,
      };
    }
    const sha = git().sha;
    const date = new Date().toISOString();
    const file = join(REPO_ROOT, 'bench', 'results', `${date.slice(0, 10)}-${sha}-cost.json`);
    writeFileSync(
      file,
      `${JSON.stringify({ date, git: sha, connections: CONNECTIONS, results: out }, null, 2)}\n`,
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
