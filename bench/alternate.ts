/**
 * Two ways of running the same load, measured round by round in alternation (A B, then B A, …)
 * so both sides share each moment of a VM whose speed drifts by a fifth within minutes
 * (bench/paired.ts). Each side may first change something (`enter`: a generator, an etcd
 * setting) and then runs its closed loop. Each round prints the rate, the p99 and the whole
 * machine's CPU per request (every process, the generator's children included); the end prints
 * the paired summary of both. A round with errors stops the comparison: its numbers would not
 * be the same work.
 */
import { cpuBetween, snapshot } from './cpu-usage.js';
import type { LoadResult } from './load.js';
import { pairedSummary } from './paired.js';
import { cpuMsPerRequest } from './report.js';

export interface AlternateSide {
  name: string;
  /** runs before each of this side's rounds, unmeasured (e.g. an etcd put and its wait) */
  enter?: () => Promise<void>;
  run: () => Promise<LoadResult>;
}

export async function alternate(
  what: string,
  rounds: number,
  sides: readonly [AlternateSide, AlternateSide],
  log: (line: string) => void = console.log,
): Promise<void> {
  const rps: number[][] = [[], []];
  const cpuMs: number[][] = [[], []];
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const side = sides[i]!;
      await side.enter?.();
      const before = snapshot();
      const out = await side.run();
      const ms = cpuMsPerRequest({ cpu: cpuBetween(before, snapshot()), rps: out.rps }) ?? Number.NaN;
      if (out.errors > 0) throw new Error(`${side.name}, round ${r}: ${out.errors} errors`);
      rps[i]!.push(out.rps);
      cpuMs[i]!.push(ms);
      log(
        `round ${r} ${side.name}: ${out.rps.toFixed(0)}/s, p99 ${out.p99.toFixed(1)} ms, ` +
          `${ms.toFixed(3)} ms of the machine's CPU per request, generator ${out.generatorCpuPercent.toFixed(0)} % of a core`,
      );
    }
  }
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(x * 100).toFixed(1)} %`;
  const r = pairedSummary(rps[0]!, rps[1]!);
  const c = pairedSummary(cpuMs[0]!, cpuMs[1]!);
  const [a, b] = sides;
  log(
    `\n${what}, ${rounds} rounds, ${b.name} against ${a.name}:\n` +
      `  requests/s: ${r.meanA.toFixed(0)} → ${r.meanB.toFixed(0)} (${pct(r.change)}); ${b.name} higher in ${r.higher}, lower in ${r.lower}, tied in ${r.ties} rounds\n` +
      `  CPU per request: ${c.meanA.toFixed(3)} → ${c.meanB.toFixed(3)} ms (${pct(c.change)}); ${b.name} higher in ${c.higher}, lower in ${c.lower}, tied in ${c.ties} rounds`,
  );
}
