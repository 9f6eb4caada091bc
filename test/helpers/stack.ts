/**
 * The local stack as integration tests see it: the AMQP URL from stack/topology.ts (never a
 * literal port), the stack CLI, the pid of a stack process, and `waitFor`. HTTP base URLs are in
 * stack/urls.ts (re-exported by ./api.ts), etcd in ./etcd.ts, SQL on the MariaDB nodes in
 * ./shard-db.ts.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { REPO_ROOT } from '../../stack/paths.js';
import { processes } from '../../stack/process-manager.js';
import { topology } from '../../stack/topology.js';

export const AMQP_URL = `amqp://guest:guest@${topology.host}:${topology.rabbitmq.port}`;

/** `npm run stack -- …args`; stdout. Throws on a non-zero exit (status exits 1 when unhealthy). */
export function stackCli(args: string[], { timeoutMs = 180_000 }: { timeoutMs?: number } = {}): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: timeoutMs,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** pid recorded for a stack process (`.stack/pids/<name>.pid`), undefined when none. */
export function stackPid(name: string): number | undefined {
  try {
    return Number(readFileSync(processes.pidFile(name), 'utf8').trim()) || undefined;
  } catch {
    return undefined;
  }
}

export { type WaitOptions, waitFor } from './wait-for.js';
