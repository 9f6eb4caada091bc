/**
 * `npx tsx bench/generator-ab.ts [rounds]` (default 8) — does the load generator hold the writes?
 * Borrow + return of the lending tenants through HAProxy, the same 32-connection closed loop as
 * `npm run bench`, driven by autocannon (bench/load.ts) and by wrk (bench/wrk.ts `wrkLending`)
 * in alternating rounds (A B, then B A, …). Each round prints the write rate, the p99 and the
 * whole machine's CPU per write (wrk counts under `other`); the end prints the paired summary
 * (bench/paired.ts), which tells a generator's effect from the VM's drift between rounds.
 *
 * `AB_SECONDS` (default 6) sets each round's length. Needs the local stack up; the tenants it
 * creates are removed from the etcd directory at the end (their rows stay on the shards).
 */
import { CACHE_KEYS, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { closedLoop, type LoadResult } from './load.js';
import { pairedSummary } from './paired.js';
import { cpuMsPerRequest } from './report.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';
import { wrkLending } from './wrk.js';

const SECONDS = Number(process.env.AB_SECONDS ?? 6);

async function main(): Promise<void> {
  const rounds = Number(process.argv[2] ?? 8);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error('usage: bench/generator-ab.ts [rounds ≥ 1]');
  await preflight();
  const tag = runTag();
  const restoreCache = await remember(CACHE_KEYS);
  try {
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const s = apiScenario(scenarios(fixtures), 'loans');
    await setCache(s.cache ?? true, hotBookRequest(fixtures), INSTANCES, s.near);
    const sides: [string, () => Promise<LoadResult>][] = [
      ['autocannon', () => closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: SECONDS })],
      ['wrk', () => wrkLending(HAPROXY, fixtures.lenders, { connections: s.connections, seconds: SECONDS })],
    ];
    await closedLoop(HAPROXY, s.steps, { connections: s.connections, seconds: 2 });
    const rps: number[][] = [[], []];
    const cpuMs: number[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const [name, run] = sides[side]!;
        const before = snapshot();
        const out = await run();
        const ms = cpuMsPerRequest({ cpu: cpuBetween(before, snapshot()), rps: out.rps }) ?? Number.NaN;
        if (out.errors > 0) throw new Error(`${name} round ${r}: ${out.errors} errors`);
        rps[side]!.push(out.rps);
        cpuMs[side]!.push(ms);
        console.log(
          `round ${r} ${name}: ${out.rps.toFixed(0)} writes/s, p99 ${out.p99.toFixed(1)} ms, ` +
            `${ms.toFixed(2)} ms of the machine's CPU per write, generator ${out.generatorCpuPercent.toFixed(0)} % of a core`,
        );
      }
    }
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    const r = pairedSummary(rps[0]!, rps[1]!);
    const c = pairedSummary(cpuMs[0]!, cpuMs[1]!);
    console.log(
      `\n${s.name} through HAProxy, ${rounds} rounds of ${SECONDS} s at ${s.connections} connections, wrk against autocannon:\n` +
        `  writes/s: ${r.meanA.toFixed(0)} → ${r.meanB.toFixed(0)} (${pct(r.change)}); wrk higher in ${r.higher}, lower in ${r.lower}, tied in ${r.ties} rounds\n` +
        `  CPU per write: ${c.meanA.toFixed(2)} → ${c.meanB.toFixed(2)} ms (${pct(c.change)}); wrk higher in ${c.higher}, lower in ${c.lower}, tied in ${c.ties} rounds`,
    );
  } finally {
    await restoreCache();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(
    `generator-ab failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
