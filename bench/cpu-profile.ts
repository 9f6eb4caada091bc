/**
 * Summary of a V8 `.cpuprofile` (from `node --cpu-prof`): self time by function and by where the
 * code lives (this project's dist/, a package in node_modules, Node internals, GC, idle).
 * `npx tsx bench/cpu-profile.ts <file.cpuprofile> [top]` prints both tables.
 * V8 samples wall-clock time of the main thread: time the thread spends descheduled inside a
 * call (e.g. a socket write that wakes another process on a busy box) is charged to that call.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileLine {
  name: string;
  ms: number;
  share: number;
}

function place(url: string, functionName: string): string {
  if (functionName === '(idle)') return '(idle)';
  if (functionName === '(garbage collector)') return '(garbage collector)';
  if (functionName === '(program)') return '(program: native, outside JS)';
  if (!url) return '(native / V8 builtins, e.g. socket writes)';
  if (url.startsWith('node:'))
    return `node internals (${url.replace(/^node:(internal\/)?/, '').split('/')[0]})`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + '/node_modules/'.length).split('/');
    return `npm ${rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]}`;
  }
  const dist = /\/dist\/(.*)$/.exec(url);
  if (dist) return `shardgate ${dist[1]!.replace(/\/[^/]+$/, '/')}`;
  return url.replace(/^file:\/\//, '');
}

export function summarise(
  file: string,
  top = 20,
): { byFunction: ProfileLine[]; byPlace: ProfileLine[]; totalMs: number } {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const us = profile.timeDeltas[i] ?? 0;
    self.set(id, (self.get(id) ?? 0) + us);
    total += us;
  });
  const byFunction = new Map<string, number>();
  const byPlace = new Map<string, number>();
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = nodes.get(id)!.callFrame;
    const where = url ? ` ${url.replace(/^.*\/(node_modules|dist)\//, '$1/')}:${lineNumber + 1}` : '';
    const name = `${functionName || '(anonymous)'}${where}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    const p = place(url, functionName);
    byPlace.set(p, (byPlace.get(p) ?? 0) + us);
  }
  const lines = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, ms: us / 1000, share: total ? us / total : 0 }));
  return { byFunction: lines(byFunction), byPlace: lines(byPlace), totalMs: total / 1000 };
}

export function format(lines: ProfileLine[]): string {
  return lines
    .map((l) => `${(l.share * 100).toFixed(1).padStart(5)} %  ${l.ms.toFixed(0).padStart(7)} ms  ${l.name}`)
    .join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const [file, top] = process.argv.slice(2);
  if (!file) {
    console.error('usage: npx tsx bench/cpu-profile.ts <file.cpuprofile> [top]');
    process.exit(1);
  }
  const s = summarise(file, Number(top ?? 25));
  console.log(`${s.totalMs.toFixed(0)} ms sampled\n\nself time by place:\n${format(s.byPlace)}`);
  console.log(`\nself time by function:\n${format(s.byFunction)}`);
}
