/**
 * The stack's own Node processes, all from `dist/` (stack/build.ts keeps it fresh): the SMTP
 * sink, the API instances, the email worker, the lb sync daemon, and the one-shot steps
 * `shardgate-ctl init` (seed etcd defaults) and the migrations runner.
 *
 * The worker and the lb sync daemon came in later issues than the stack: each is started only
 * when its compiled entry exists (`workerBuilt`, `lbSyncBuilt`); `status` lists it as "not built
 * yet" otherwise. The migrations runner is skipped with a note while it does not exist.
 *
 * Each listens on `topology.host` only (SHARDGATE_LISTEN_HOST, from stackEnv): the API and agent
 * ports, the worker's metrics port (the SMTP sink binds the same address, its own default).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { promisify } from 'node:util';
import { distFile } from './build.js';
import { HAPROXY_SOCKET, MAIL_DIR, REPO_ROOT } from './paths.js';
import { startProcess } from './process-manager.js';
import { stackEnv } from './stack-env.js';
import { topology } from './topology.js';

const run = promisify(execFile);

const CTL = distFile('control-plane', 'cli.js');
const WORKER = distFile('src', 'entry', 'email-worker.js');
const LB_SYNC = distFile('control-plane', 'commands', 'lb-sync.js');
const MIGRATE = distFile('src', 'db', 'migrate-cli.js');

/**
 * V8 flags of an API process: a 64 MiB young generation (default 16 MiB) — the request path
 * allocates short-lived objects fast, and a larger nursery means fewer scavenges and less
 * promoted garbage (measured: ~7 % more cached reads per core on this box, GC share 9 → 7 %).
 * `npm start` (package.json) and docker/Dockerfile pass the same flag.
 */
export const API_NODE_FLAGS = ['--max-semi-space-size=64'];

export const workerBuilt = () => existsSync(WORKER);
export const lbSyncBuilt = () => existsSync(CTL) && existsSync(LB_SYNC);

export function startSmtpSink(): number {
  mkdirSync(MAIL_DIR, { recursive: true });
  return startProcess({
    name: topology.smtp.name,
    command: process.execPath,
    args: [distFile('stack', 'smtp-sink.js')],
  });
}

export function startApi(id: string): number {
  const api = topology.apis.find((a) => a.id === id);
  if (!api) throw new Error(`unknown API instance ${id}`);
  return startProcess({
    name: api.id,
    command: process.execPath,
    args: [...API_NODE_FLAGS, distFile('src', 'entry', 'node.js')],
    env: {
      ...stackEnv(),
      PORT: String(api.port),
      SHARDGATE_INSTANCE_ID: api.id,
      SHARDGATE_AGENT_PORT: String(api.agentPort),
      SHARDGATE_LB_INITIAL_WEIGHT: String(api.weight),
    },
  });
}

export function startWorker(): number {
  return startProcess({
    name: topology.worker.name,
    command: process.execPath,
    args: [WORKER],
    // 4 attempts = retries after 1 s, 2 s, 4 s, then the dead-letter queue (tests wait for it)
    env: {
      ...stackEnv(),
      SHARDGATE_INSTANCE_ID: 'stack',
      SHARDGATE_MAIL_MAX_ATTEMPTS: '4',
      SHARDGATE_WORKER_METRICS_PORT: String(topology.worker.metricsPort),
    },
  });
}

export function startLbSync(): number {
  return startProcess({
    name: topology.lbSync.name,
    command: process.execPath,
    args: [CTL, 'lb', 'sync', '--watch', '--socket', HAPROXY_SOCKET],
    env: stackEnv(),
  });
}

/** Runs a one-shot command; its summary is the last line of its output, or every line joined. */
async function oneShot(what: string, args: string[], { everyLine = false } = {}): Promise<string> {
  try {
    const { stdout } = await run(process.execPath, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, ...stackEnv() },
      timeout: 120_000,
    });
    const lines = stdout.trim().split('\n');
    return (everyLine ? lines.join('; ') : lines.at(-1)) ?? '';
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    const out = `${e.stderr ?? ''}${e.stdout ?? ''}`.trim() || String(error);
    throw new Error(`${what} failed:\n${out}`);
  }
}

/** `shardgate-ctl init`: seeds the etcd keys that are absent (never overwrites). */
export async function ctlInit(): Promise<string> {
  if (!existsSync(CTL)) throw new Error(`shardgate-ctl is not built (${CTL} missing): cannot seed etcd`);
  return oneShot('shardgate-ctl init', [CTL, 'init']);
}

/**
 * The migrations runner over the topology's shards (one line per shard, joined). Another shard in
 * etcd (an operator's, or one a test left behind) is listed as not migrated rather than stopping
 * the stack when its server is down or outside SHARDGATE_DB_HOSTS.
 */
export async function migrate(): Promise<string> {
  if (!existsSync(MIGRATE)) return 'skipped: src/db/migrate-cli.ts does not exist yet';
  const shards = topology.shards.flatMap((s) => ['--shard', s.id]);
  return oneShot('migrations', [MIGRATE, ...shards], { everyLine: true });
}
