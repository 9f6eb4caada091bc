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

/** % of a core over `seconds` → ms per request */
const perRequest = (pct: number, seconds: number, requests: number) =>
  requests > 0 ? +(((pct / 100) * seconds * 1000) / requests).toFixed(3) : 0;

/** ms of CPU per request by part (and `other`) over a window of `seconds` with `requests` done */
export function perRequestMs(cpu: CpuReport, seconds: number, requests: number, parts: Parts) {
  const out: Record<string, number> = {};
  for (const [part, names] of Object.entries(parts)) {
    out[part] = perRequest(
      names.reduce((sum, name) => sum + (cpu.processes[name] ?? 0), 0),
      seconds,
      requests,
    );
  }
  out.other = perRequest(cpu.other, seconds, requests);
  return out;
}

/**
 * ms per request that the threads of each part were ready to run but waited for a core (and
 * `other`: every other process of the machine); undefined when the report has no schedstat
 */
export function waitPerRequestMs(cpu: CpuReport, seconds: number, requests: number, parts: Parts) {
  const waiting = cpu.waiting;
  if (!waiting) return undefined;
  const out: Record<string, number> = {};
  let named = 0;
  for (const [part, names] of Object.entries(parts)) {
    const pct = names.reduce((sum, name) => sum + (waiting.processes[name] ?? 0), 0);
    named += pct;
    out[part] = perRequest(pct, seconds, requests);
  }
  out.other = perRequest(Math.max(0, waiting.all - named), seconds, requests);
  return out;
}

export function totalMs(perRequest: Record<string, number>): number {
  return Object.values(perRequest).reduce((a, b) => a + b, 0);
}

/**
 * The lines of one breakdown, and the rate its total allows on this machine's cores; with
 * `waited` (waitPerRequestMs), each part's wait for a core beside its CPU.
 */
export function costLines(
  perRequest: Record<string, number>,
  cores: number,
  waited?: Record<string, number>,
): string[] {
  const total = totalMs(perRequest);
  const wait = (ms: number | undefined) =>
    waited ? `   waited for a core ${(ms ?? 0).toFixed(3).padStart(7)} ms` : '';
  return [
    ...Object.entries(perRequest).map(
      ([part, ms]) => `  ${part.padEnd(18)} ${ms.toFixed(3)} ms${wait(waited?.[part])}`,
    ),
    `  ${'total'.padEnd(18)} ${total.toFixed(3)} ms CPU per request → at most ${((cores * 1000) / total).toFixed(0)}/s on ${cores} cores` +
      (waited ? `; ${totalMs(waited).toFixed(3)} ms waited for a core` : ''),
  ];
}
