/**
 * The local stack as integration tests see it: base URLs and ports from stack/topology.ts (never
 * a literal port), `etcdctl` as an operator runs it, SQL on one MariaDB node, the stack CLI, the
 * pid of a stack process, and `waitFor`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createConnection } from 'mysql2/promise';
import { REPO_ROOT } from '../../stack/paths.js';
import { processes } from '../../stack/process-manager.js';
import { topology } from '../../stack/topology.js';

const H = topology.host;

/** HAProxy's frontend (:8080) */
export const HAPROXY_URL = `http://${H}:${topology.haproxy.port}`;
/** HAProxy stats + Prometheus (:8404) */
export const HAPROXY_STATS_URL = `http://${H}:${topology.haproxy.statsPort}`;
/** each API instance by its id */
export const API_URLS: Record<string, string> = Object.fromEntries(
  topology.apis.map((a) => [a.id, `http://${H}:${a.port}`]),
);
export const ETCD_URL = `http://${H}:${topology.etcd.port}`;
export const REDIS_URL = `redis://${H}:${topology.redis.port}`;
export const AMQP_URL = `amqp://guest:guest@${H}:${topology.rabbitmq.port}`;

export { DB_NODES } from './shard-db.js';

/** `etcdctl --endpoints=<stack etcd> …args` (API v3); stdout, throws with stderr on failure. */
export function etcdctl(args: string[]): string {
  const r = spawnSync('etcdctl', [`--endpoints=${ETCD_URL}`, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ETCDCTL_API: '3' },
    timeout: 15_000,
  });
  if (r.status !== 0) throw new Error(`etcdctl ${args.join(' ')}: ${r.stderr || r.error}`);
  return r.stdout;
}

/** Value of `<prefix><key>`, undefined when absent. */
export function etcdGet(key: string): string | undefined {
  const out = etcdctl(['get', `${topology.etcd.prefix}${key}`, '--print-value-only']);
  return out === '' ? undefined : out.replace(/\n$/, '');
}

export function etcdPut(key: string, value: string): void {
  etcdctl(['put', `${topology.etcd.prefix}${key}`, value]);
}

/**
 * One query as root on the MariaDB node listening on `port` (root@127.0.0.1 without password
 * exists on every stack node), database `shardgate`; rows for a SELECT.
 */
export async function mariadb<T = Record<string, unknown>>(
  port: number,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const conn = await createConnection({
    host: H,
    port,
    user: 'root',
    password: '',
    database: topology.database,
    connectTimeout: 5000,
  });
  try {
    const [rows] = await conn.query(sql, params);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

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
