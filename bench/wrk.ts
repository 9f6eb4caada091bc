/**
 * Debian's `wrk` (C, epoll, one thread per core) as a second load generator: the closed loops of
 * the headline reads and of the ceiling run once more with it, so their ratio is not an artefact
 * of autocannon, which spends a large share of this 2-core box itself (bench/report.ts shows it
 * beside the verdict; the verdict stays autocannon's).
 *
 * `wrk` prints its percentiles only as text; a Lua `done` hook (written to a temporary file)
 * prints the requests, the errors and the exact p50/p95/p99/max of its latency record on one
 * line, which `parseWrk` reads. wrk counts answers outside 2xx/3xx (`errors.status`) and socket
 * errors (connect, read, write, timeout) but not each status code. Its CPU is read from this
 * process's reaped-children time (/proc/self/stat), so it must be the only child running.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { statFields, TICKS_PER_SECOND } from './cpu-usage.js';
import type { LoadResult, Req } from './load.js';

const run = promisify(execFile);

const DONE_HOOK = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SHARDGATE-WRK %d %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
`;

export interface WrkOptions {
  connections?: number;
  seconds?: number;
  /** wrk threads (default 2: one per core of this box) */
  threads?: number;
}

/** the LoadResult of wrk's output, from the hook's line; throws when the line is missing */
export function parseWrk(stdout: string, generatorCpuPercent = Number.NaN): LoadResult {
  const line = /^SHARDGATE-WRK ((?:\d+ ){10}\d+)$/m.exec(stdout);
  if (!line) throw new Error(`wrk printed no summary line:\n${stdout}`);
  const [requests, durationUs, status, connect, read, write, timeout, p50, p95, p99, max] = line[1]!
    .split(' ')
    .map(Number) as [number, number, number, number, number, number, number, number, number, number, number];
  const seconds = durationUs / 1e6;
  const socketErrors = connect + read + write + timeout;
  const ms = (us: number) => us / 1000;
  return {
    seconds,
    requests,
    rps: seconds > 0 ? requests / seconds : 0,
    p50: ms(p50),
    p95: ms(p95),
    p99: ms(p99),
    max: ms(max),
    non2xx: status,
    socketErrors,
    errors: status + socketErrors,
    statusCodes: { '2xx/3xx': requests - status, ...(status > 0 ? { 'not 2xx/3xx': status } : {}) },
    generatorCpuPercent,
  };
}

/** CPU ticks of this process's reaped children (cutime + cstime) */
function childTicks(): number {
  const f = statFields(readFileSync('/proc/self/stat', 'utf8'));
  return Number(f[13]) + Number(f[14]); // cutime(16) + cstime(17)
}

/** a closed loop of `connections` with wrk against `base` + `req` (GET with headers only) */
export async function wrk(
  base: string,
  req: Req,
  { connections = 32, seconds = 6, threads = 2 }: WrkOptions = {},
): Promise<LoadResult> {
  if ((req.method ?? 'GET') !== 'GET' || req.body)
    throw new Error('wrk runs GET requests without a body only');
  const dir = mkdtempSync(join(tmpdir(), 'shardgate-wrk-'));
  try {
    const script = join(dir, 'done.lua');
    writeFileSync(script, DONE_HOOK);
    const headers = Object.entries(req.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const args = [
      `-t${Math.min(threads, connections)}`,
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '10s',
      '-s',
      script,
      ...headers,
      new URL(req.path, base).toString(),
    ];
    const ticks0 = childTicks();
    const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
    const cpuSeconds = (childTicks() - ticks0) / TICKS_PER_SECOND;
    return parseWrk(stdout, seconds > 0 ? (cpuSeconds / seconds) * 100 : 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('wrk is not installed (Debian package `wrk`: apt-get install wrk)');
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
