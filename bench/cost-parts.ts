/**
 * CPU per request by part of the stack, from a cpu-usage.ts report over a measured window:
 * the process groups folded into the parts a reader compares, each as ms of CPU per request,
 * plus "other" (the rest of the machine: kernel threads, interrupts, noise). Shared by
 * bench/cost.ts (requests through HAProxy) and bench/data-path.ts (the write path in-process).
 */
import type { CpuReport } from './cpu-usage.js';

/** part name → the cpu-usage.ts process names it adds up; `bench` is the measuring process */
export type Parts = Record<string, readonly string[]>;

export const STACK_PARTS: Parts = {
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

/** ms of CPU per request by part (and `other`) over a window of `seconds` with `requests` done */
export function perRequestMs(cpu: CpuReport, seconds: number, requests: number, parts: Parts) {
  // % of a core over the window → ms of CPU per request
  const ms = (pct: number) => (requests > 0 ? +(((pct / 100) * seconds * 1000) / requests).toFixed(3) : 0);
  const out: Record<string, number> = {};
  for (const [part, names] of Object.entries(parts)) {
    out[part] = ms(names.reduce((sum, name) => sum + (cpu.processes[name] ?? 0), 0));
  }
  out.other = ms(cpu.other);
  return out;
}

export function totalMs(perRequest: Record<string, number>): number {
  return Object.values(perRequest).reduce((a, b) => a + b, 0);
}

/** the lines of one breakdown, and the rate its total allows on this machine's cores */
export function costLines(perRequest: Record<string, number>, cores: number): string[] {
  const total = totalMs(perRequest);
  return [
    ...Object.entries(perRequest).map(([part, ms]) => `  ${part.padEnd(18)} ${ms.toFixed(3)} ms`),
    `  ${'total'.padEnd(18)} ${total.toFixed(3)} ms CPU per request → at most ${((cores * 1000) / total).toFixed(0)}/s on ${cores} cores`,
  ];
}
