/**
 * `npx tsx bench/profile.ts [scenario-key …]` (default: health book-hit loans) — where an API
 * instance spends its time in a scenario of the bench. Needs the local stack up and leaves the
 * stack's own instances alone: for each scenario it starts one extra API instance
 * (`bench-profile` on a free port, the stack's environment, `node --cpu-prof`, not behind
 * HAProxy), loads it directly with the scenario's closed loop, stops it with SIGTERM (V8 writes
 * the profile on exit) and prints the self time by place and by function (bench/cpu-profile.ts),
 * with the CPU each process of the machine used meanwhile. The summary goes to
 * bench/results/<date>-<sha>-profile.json; the profiles stay in a temporary directory.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { CACHE_KEYS, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { format, summarise } from './cpu-profile.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { startExtraInstance, stopExtraInstance } from './extra-instance.js';
import { closedLoop } from './load.js';
import { git } from './machine.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
/** connections of the closed loop (default: the scenario's own); a few show the cost unsaturated */
const CONNECTIONS = process.env.BENCH_PROFILE_CONNECTIONS
  ? Number(process.env.BENCH_PROFILE_CONNECTIONS)
  : undefined;

async function main(): Promise<void> {
  await preflight();
  const keys = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['health', 'book-hit', 'loans'];
  const tag = runTag();
  const restoreCache = await remember(CACHE_KEYS);
  const dir = mkdtempSync(join(tmpdir(), 'shardgate-profile-'));
  const children: ChildProcess[] = [];
  const summary: Record<string, unknown> = {};
  try {
    console.log(`profiling ${keys.join(', ')} (${SECONDS} s each); setup …`);
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const all = scenarios(fixtures);
    for (const key of keys) {
      const s = apiScenario(all, key);
      const sub = mkdtempSync(join(dir, `${key}-`));
      const { child, base } = await startExtraInstance({
        id: 'bench-profile',
        nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${sub}`],
      });
      children.push(child);
      if (s.cache !== undefined)
        await setCache(s.cache, hotBookRequest(fixtures), [...INSTANCES, base], s.near);
      await closedLoop(base, s.steps, { connections: CONNECTIONS ?? s.connections, seconds: 1 });
      const cpu0 = snapshot();
      const r = await closedLoop(base, s.steps, {
        connections: CONNECTIONS ?? s.connections,
        seconds: SECONDS,
      });
      const cpu = cpuBetween(cpu0, snapshot(), { 'bench-profile': child.pid ?? 0 });
      await stopExtraInstance(child);
      const file = readdirSync(sub).find((f) => f.endsWith('.cpuprofile'));
      if (!file) throw new Error(`no .cpuprofile written in ${sub}`);
      const p = summarise(join(sub, file), 25);
      const instanceCpu = cpu.processes['bench-profile'] ?? 0;
      const perRequestMs = r.rps > 0 ? (instanceCpu / 100 / r.rps) * 1000 : 0;
      console.log(
        `\n== ${s.name}, directly on the profiled instance: ${r.rps.toFixed(0)} req/s, p99 ${r.p99.toFixed(1)} ms, ` +
          `${r.errors} errors; the instance used ${instanceCpu} % of a core (${perRequestMs.toFixed(2)} ms CPU ` +
          `per request); machine idle ${cpu.machine.idle} %, iowait ${cpu.machine.iowait} %`,
      );
      console.log(`CPU by process (% of a core): ${JSON.stringify(cpu.processes)}, other ${cpu.other}`);
      const waited = cpu.waiting?.processes['bench-profile'];
      if (waited !== undefined)
        // V8 samples by the clock: a thread that waits for a core inside a call (a socket write
        // that woke the receiving process, which then took the core) has that wait counted as
        // the call's own time in the profile, though it used no CPU
        console.log(
          `the instance's threads waited for a core ${waited} % of a core meanwhile (all processes: ` +
            `${cpu.waiting!.all} %); the profile counts such waits as time in the call the thread was in`,
        );
      console.log(`profile: ${join(sub, file)}\n\nself time by place:\n${format(p.byPlace)}`);
      console.log(`\nself time by function:\n${format(p.byFunction)}`);
      summary[key] = {
        rps: r.rps,
        p99: r.p99,
        errors: r.errors,
        cpu,
        perRequestCpuMs: perRequestMs,
        profile: p,
      };
    }
    const sha = git().sha;
    const date = new Date().toISOString();
    const out = join(REPO_ROOT, 'bench', 'results', `${date.slice(0, 10)}-${sha}-profile.json`);
    writeFileSync(out, `${JSON.stringify({ date, git: sha, seconds: SECONDS, summary }, null, 2)}\n`);
    console.log(`\nsummary written to ${out}; profiles in ${dir}`);
  } finally {
    for (const c of children) await stopExtraInstance(c);
    await restoreCache();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(`profile failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
