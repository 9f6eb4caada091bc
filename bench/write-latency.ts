/**
 * `npx tsx bench/write-latency.ts [rate/s …]` — the latency of borrow + return (with email, through
 * HAProxy) at constant rates, evenly paced (bench/load.ts `paced`, bench/scenarios.ts
 * `pacedLending`): the answer to "what p99 does a write get at N writes/s on this box", which a
 * closed loop cannot give (its p99 is its own connections queueing). Needs the local stack up.
 *
 * Without rates it first runs the bench's closed loop (32 connections) for the maximum, then
 * paces at 50, 70 and 90 % of it. Between runs it waits until the email worker has sent every
 * email of the run before (an outbox backlog would slow the next one). BENCH_SECONDS (default 8)
 * per run. Prints one line per run and writes bench/results/<date>-<sha>-write-latency.json.
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { drainOutbox, HAPROXY, INSTANCES, preflight } from './api-state.js';
import { etcdDel } from './etcd.js';
import { closedLoop, type LoadResult, paced } from './load.js';
import { git } from './machine.js';
import { writeResultFile } from './result-file.js';
import { apiScenario, pacedLending, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const SOCKETS = 32;

const line = (what: string, r: LoadResult) =>
  `${what}: ${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(1)} ms, p95 ${r.p95.toFixed(1)} ms, ` +
  `p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(0)} ms, ${r.errors} errors` +
  (r.generatorLag ? `; generator late p99 ${r.generatorLag.p99.toFixed(1)} ms` : '');

async function main(): Promise<void> {
  const rates = process.argv.slice(2).map(Number);
  const bad = process.argv.slice(2).filter((_, i) => !(rates[i]! > 0));
  if (bad.length > 0) throw new Error(`rates must be positive numbers of writes/s, got ${bad.join(' ')}`);
  await preflight();
  const tag = runTag();
  try {
    console.log('write latency: setup …');
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const loans = apiScenario(scenarios(fixtures), 'loans');
    await closedLoop(HAPROXY, loans.steps, { connections: loans.connections, seconds: 1 }); // warm-up
    await drainOutbox();
    const runs: Record<string, unknown>[] = [];
    if (rates.length === 0) {
      const max = await closedLoop(HAPROXY, loans.steps, {
        connections: loans.connections,
        seconds: SECONDS,
      });
      console.log(line(`closed loop of ${loans.connections}`, max));
      runs.push({ mode: 'closed loop', connections: loans.connections, ...max });
      rates.push(...[0.5, 0.7, 0.9].map((share) => Math.round(max.rps * share)));
      await drainOutbox();
    }
    for (const rate of rates) {
      const r = await paced(HAPROXY, pacedLending(fixtures), { rate, seconds: SECONDS, sockets: SOCKETS });
      console.log(line(`paced at ${rate}/s`, r));
      runs.push({ mode: 'paced', rate, sockets: SOCKETS, ...r });
      await drainOutbox();
    }
    const date = new Date().toISOString();
    const sha = git().sha;
    const file = writeResultFile(
      join(REPO_ROOT, 'bench', 'results'),
      { date, sha, suffix: '-write-latency' },
      { date, git: sha, secondsPerRun: SECONDS, runs },
    );
    console.log(`\nwritten to ${file}`);
  } finally {
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(`write-latency failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
