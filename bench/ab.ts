/**
 * `npx tsx bench/ab.ts <rev-a> <rev-b> [scenario-key] [rounds]` (defaults: book-hit, 8) — two
 * revisions of the API side by side: each is built from git into `.bench-ab/<sha>/` (git-ignored,
 * kept for the next run), started as an extra instance beside the local stack (bench/
 * extra-instance.ts, the stack's flags and environment), and loaded directly, not through
 * HAProxy, in alternating rounds (A B, then B A, …) with the scenario's requests. Each round
 * prints requests/s and the instance's CPU per request; the end prints the paired summary
 * (bench/paired.ts). This is how a change of a few percent is told apart from the VM's drift,
 * which full `npm run bench` runs minutes apart cannot do (bench/README.md).
 *
 * `AB_CONNECTIONS` (default 16) and `AB_SECONDS` (default 5) set each round's closed loop. Needs
 * the local stack up; the tenants it creates are removed at the end.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { API_NODE_FLAGS } from '../stack/app-processes.js';
import { REPO_ROOT } from '../stack/paths.js';
import { CACHE_KEYS, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { type ExtraInstance, startExtraInstance, stopExtraInstance } from './extra-instance.js';
import { closedLoop } from './load.js';
import { pairedSummary } from './paired.js';
import { apiScenario, hotBookRequest, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, runTag } from './setup.js';

const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 16);
const SECONDS = Number(process.env.AB_SECONDS ?? 5);

/** the API entry of `rev`, built once into .bench-ab/<sha>/ from `git archive` with this checkout's node_modules */
function build(rev: string): { sha: string; entry: string } {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  const dir = join(REPO_ROOT, '.bench-ab', sha);
  const entry = join(dir, 'dist', 'src', 'entry', 'node.js');
  if (!existsSync(entry)) {
    console.log(`building ${rev} (${sha}) …`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    execFileSync('sh', ['-c', `git archive ${sha} | tar -x -C "${dir}"`], { cwd: REPO_ROOT });
    execFileSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], {
      cwd: dir,
      stdio: 'inherit',
    });
  }
  return { sha, entry };
}

async function main(): Promise<void> {
  const [revA, revB, key = 'book-hit', roundsArg = '8'] = process.argv.slice(2);
  if (!revA || !revB) throw new Error('usage: bench/ab.ts <rev-a> <rev-b> [scenario-key] [rounds]');
  const rounds = Number(roundsArg);
  const builds = [build(revA), build(revB)];
  await preflight();
  const tag = runTag();
  const restoreCache = await remember(CACHE_KEYS);
  const started: ExtraInstance[] = [];
  try {
    const fixtures = await createFixtures(new ApiClient(HAPROXY, INSTANCES), tag);
    const s = apiScenario(scenarios(fixtures), key);
    for (const b of builds)
      started.push(
        await startExtraInstance({ id: `bench-ab-${b.sha}`, nodeArgs: API_NODE_FLAGS, entry: b.entry }),
      );
    if (s.cache !== undefined)
      await setCache(
        s.cache,
        hotBookRequest(fixtures),
        [...INSTANCES, ...started.map((i) => i.base)],
        s.near,
      );
    for (const i of started) await closedLoop(i.base, s.steps, { connections: CONNECTIONS, seconds: 4 });
    const rps: number[][] = [[], []];
    const cpuMs: number[][] = [[], []];
    for (let r = 0; r < rounds; r++) {
      for (const side of r % 2 === 0 ? [0, 1] : [1, 0]) {
        const { child, base } = started[side]!;
        const before = snapshot();
        const out = await closedLoop(base, s.steps, { connections: CONNECTIONS, seconds: SECONDS });
        const cpu = cpuBetween(before, snapshot(), { instance: child.pid ?? 0 });
        const ms = out.rps > 0 ? ((cpu.processes.instance ?? 0) / 100 / out.rps) * 1000 : 0;
        rps[side]!.push(out.rps);
        cpuMs[side]!.push(ms);
        console.log(
          `${s.key} round ${r} ${side === 0 ? 'A' : 'B'} ${builds[side]!.sha}: ${out.rps.toFixed(0)} req/s, ` +
            `${ms.toFixed(4)} ms CPU per request, p99 ${out.p99.toFixed(1)} ms, ${out.errors} errors`,
        );
      }
    }
    const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
    const r = pairedSummary(rps[0]!, rps[1]!);
    const c = pairedSummary(cpuMs[0]!, cpuMs[1]!);
    console.log(
      `\n${s.name}, ${rounds} rounds of ${SECONDS} s at ${CONNECTIONS} connections, B = ${builds[1]!.sha} against A = ${builds[0]!.sha}:\n` +
        `  req/s: ${r.meanA.toFixed(0)} → ${r.meanB.toFixed(0)} (${pct(r.change)}); B higher in ${r.higher}, lower in ${r.lower}, tied in ${r.ties} rounds\n` +
        `  CPU per request: ${c.meanA.toFixed(4)} → ${c.meanB.toFixed(4)} ms (${pct(c.change)}); B higher in ${c.higher}, lower in ${c.lower}, tied in ${c.ties} rounds`,
    );
  } finally {
    for (const i of started) await stopExtraInstance(i.child);
    await restoreCache();
    await etcdDel(`tenants/${tag}-`, { prefix: true });
  }
}

main().catch((error: unknown) => {
  console.error(`ab failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
