/**
 * The local stack of CONTRACT.md §2 as plain processes: `up` (idempotent), `down` (stops exactly
 * the pids it started), `status`. Every name and port comes from stack/topology.ts.
 *
 * `up` order: preflight (binaries, foreign processes on our ports) → in parallel: build, etcd,
 * Redis, RabbitMQ, SMTP sink, the four MariaDB nodes → master setup, replication → `shardgate-ctl
 * init` (etcd defaults) → migrations → API instances, email worker, lb sync, HAProxy → wait until
 * HAProxy answers `GET /health/ready` with 200.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { localServers, renderHaproxyConfig } from './haproxy-config.js';
import { initDatadir, setupMaster, setupReplica, startMariaDb, waitForMariaDb } from './mariadb.js';
import { HAPROXY_SOCKET, MAIL_DIR, REPO_ROOT, SECRETS_FILE, STATE_DIR } from './paths.js';
import { checkBinaries, foreignPortUsers } from './preflight.js';
import {
  httpStatus,
  isAlive,
  logFile,
  portOpen,
  readPid,
  runningPid,
  startProcess,
  stopProcess,
  waitUntil,
} from './process-manager.js';
import { topology } from './topology.js';

const run = promisify(execFile);
const H = topology.host;

export interface ProcessSpec {
  name: string;
  port?: number;
  /** health probe: true when it serves */
  probe: () => Promise<boolean>;
}

export function processSpecs(): ProcessSpec[] {
  const tcp = (port: number) => () => portOpen(port);
  const http = (url: string) => async () => (await httpStatus(url)) === 200;
  return [
    {
      name: topology.etcd.name,
      port: topology.etcd.port,
      probe: http(`http://${H}:${topology.etcd.port}/health`),
    },
    { name: topology.redis.name, port: topology.redis.port, probe: tcp(topology.redis.port) },
    { name: topology.rabbitmq.name, port: topology.rabbitmq.port, probe: tcp(topology.rabbitmq.port) },
    { name: topology.smtp.name, port: topology.smtp.port, probe: tcp(topology.smtp.port) },
    ...topology.shards
      .flatMap((s) => [s.master, ...s.replicas])
      .map((n) => ({ name: n.name, port: n.port, probe: tcp(n.port) })),
    ...topology.apis.map((a) => ({
      name: a.id,
      port: a.port,
      probe: http(`http://${H}:${a.port}/health/ready`),
    })),
    { name: topology.worker.name, probe: async () => runningPid(topology.worker.name) !== undefined },
    { name: topology.lbSync.name, probe: async () => runningPid(topology.lbSync.name) !== undefined },
    {
      name: topology.haproxy.name,
      port: topology.haproxy.port,
      probe: http(`http://${H}:${topology.haproxy.port}/health/ready`),
    },
  ];
}

function dbPassword(): string {
  return process.env.SHARDGATE_DB_PASSWORD ?? topology.defaultDbPassword;
}

/** A JWT secret generated once per stack, kept in `.stack/secrets.env` (0600), never in git or etcd. */
function jwtSecret(): string {
  if (process.env.SHARDGATE_JWT_SECRET) return process.env.SHARDGATE_JWT_SECRET;
  if (existsSync(SECRETS_FILE)) {
    const m = /^SHARDGATE_JWT_SECRET=(.+)$/m.exec(readFileSync(SECRETS_FILE, 'utf8'));
    if (m) return m[1]!;
  }
  const secret = randomBytes(32).toString('base64url');
  writeFileSync(SECRETS_FILE, `SHARDGATE_JWT_SECRET=${secret}\n`);
  chmodSync(SECRETS_FILE, 0o600);
  return secret;
}

/** Environment every shardgate process of the stack gets (CONTRACT.md §3). */
export function stackEnv(): Record<string, string> {
  return {
    SHARDGATE_MODE: 'cluster',
    SHARDGATE_ETCD_ENDPOINTS: `http://${H}:${topology.etcd.port}`,
    SHARDGATE_ETCD_PREFIX: topology.etcd.prefix,
    SHARDGATE_REDIS_URL: `redis://${H}:${topology.redis.port}`,
    SHARDGATE_AMQP_URL: `amqp://guest:guest@${H}:${topology.rabbitmq.port}`,
    SHARDGATE_SMTP_URL: `smtp://${H}:${topology.smtp.port}`,
    SHARDGATE_DB_USER: topology.dbUser,
    SHARDGATE_DB_PASSWORD: dbPassword(),
    SHARDGATE_JWT_SECRET: jwtSecret(),
  };
}

async function newestMtime(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}

/** `npm run build` when dist/ is missing or older than any source file. */
async function buildIfStale(log: (s: string) => void): Promise<void> {
  const marker = join(REPO_ROOT, 'dist', 'src', 'entry', 'node.js');
  const sources = await Promise.all(
    ['src', 'control-plane', 'stack'].map((d) => newestMtime(join(REPO_ROOT, d))),
  );
  if (existsSync(marker) && statSync(marker).mtimeMs >= Math.max(...sources)) return;
  log('building dist/ (tsc)');
  try {
    await run('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: REPO_ROOT });
  } catch (error) {
    const e = error as { stdout?: string };
    throw new Error(`build failed:\n${e.stdout ?? String(error)}`);
  }
}

function startEtcd(): void {
  const e = topology.etcd;
  startProcess({
    name: e.name,
    command: 'etcd',
    args: [
      '--name=shardgate',
      `--data-dir=${join(STATE_DIR, 'etcd')}`,
      `--listen-client-urls=http://${H}:${e.port}`,
      `--advertise-client-urls=http://${H}:${e.port}`,
      `--listen-peer-urls=http://${H}:${e.peerPort}`,
      `--initial-advertise-peer-urls=http://${H}:${e.peerPort}`,
      `--initial-cluster=shardgate=http://${H}:${e.peerPort}`,
      '--auto-compaction-mode=revision',
      '--auto-compaction-retention=10000',
      '--log-level=warn',
    ],
  });
}

function startRedis(): void {
  const dir = join(STATE_DIR, 'redis');
  mkdirSync(dir, { recursive: true });
  startProcess({
    name: topology.redis.name,
    command: 'redis-server',
    args: [
      '--port',
      String(topology.redis.port),
      '--bind',
      H,
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      '--daemonize',
      'no',
    ],
  });
}

/** RabbitMQ's own node: the upstream start script (not /usr/sbin's, which switches user). */
export function rabbitEnv(): Record<string, string> {
  const base = join(STATE_DIR, 'rabbitmq');
  return {
    HOME: base,
    RABBITMQ_NODENAME: topology.rabbitmq.node,
    RABBITMQ_NODE_IP_ADDRESS: H,
    RABBITMQ_NODE_PORT: String(topology.rabbitmq.port),
    RABBITMQ_DIST_PORT: String(topology.rabbitmq.distPort),
    RABBITMQ_MNESIA_BASE: join(base, 'mnesia'),
    RABBITMQ_LOG_BASE: join(base, 'log'),
    RABBITMQ_ENABLED_PLUGINS_FILE: join(base, 'enabled_plugins'),
    RABBITMQ_CONFIG_FILE: join(base, 'rabbitmq'),
    RABBITMQ_PID_FILE: join(base, 'rabbitmq.pid'),
  };
}

function startRabbit(): void {
  const env = rabbitEnv();
  mkdirSync(env.RABBITMQ_LOG_BASE!, { recursive: true });
  mkdirSync(env.RABBITMQ_MNESIA_BASE!, { recursive: true });
  writeFileSync(env.RABBITMQ_ENABLED_PLUGINS_FILE!, '[].\n');
  // small box: no disk-space alarm on a nearly full dev disk, modest memory watermark
  writeFileSync(
    `${env.RABBITMQ_CONFIG_FILE}.conf`,
    'disk_free_limit.absolute = 50MB\nvm_memory_high_watermark.relative = 0.2\nlog.console = true\nlog.file = false\n',
  );
  startProcess({
    name: topology.rabbitmq.name,
    command: '/usr/lib/rabbitmq/bin/rabbitmq-server',
    args: [],
    env,
  });
}

function startSmtpSink(): void {
  mkdirSync(MAIL_DIR, { recursive: true });
  startProcess({
    name: topology.smtp.name,
    command: process.execPath,
    args: [join(REPO_ROOT, 'dist', 'stack', 'smtp-sink.js')],
  });
}

export function startApi(id: string): void {
  const api = topology.apis.find((a) => a.id === id);
  if (!api) throw new Error(`unknown API instance ${id}`);
  startProcess({
    name: api.id,
    command: process.execPath,
    args: [join(REPO_ROOT, 'dist', 'src', 'entry', 'node.js')],
    env: {
      ...stackEnv(),
      PORT: String(api.port),
      SHARDGATE_INSTANCE_ID: api.id,
      SHARDGATE_AGENT_PORT: String(api.agentPort),
      SHARDGATE_LB_INITIAL_WEIGHT: String(api.weight),
    },
  });
}

export function startWorker(): boolean {
  const entry = join(REPO_ROOT, 'dist', 'src', 'entry', 'email-worker.js');
  if (!existsSync(entry)) return false;
  startProcess({
    name: topology.worker.name,
    command: process.execPath,
    args: [entry],
    // 4 attempts = retries after 1 s, 2 s, 4 s, then the dead-letter queue (tests wait for it)
    env: {
      ...stackEnv(),
      SHARDGATE_INSTANCE_ID: 'stack',
      SHARDGATE_MAIL_MAX_ATTEMPTS: '4',
      SHARDGATE_WORKER_METRICS_PORT: String(topology.worker.metricsPort),
    },
  });
  return true;
}

function startLbSync(): void {
  startProcess({
    name: topology.lbSync.name,
    command: process.execPath,
    args: [
      join(REPO_ROOT, 'dist', 'control-plane', 'cli.js'),
      'lb',
      'sync',
      '--watch',
      '--socket',
      HAPROXY_SOCKET,
    ],
    env: stackEnv(),
  });
}

export function writeHaproxyConfig(): string {
  const file = join(STATE_DIR, 'haproxy.cfg');
  // SHARDGATE_LB_TENANT_AFFINITY=1: balance by X-Tenant-ID (consistent hash), reject requests without it
  const tenantAffinity = process.env.SHARDGATE_LB_TENANT_AFFINITY === '1';
  writeFileSync(
    file,
    renderHaproxyConfig({ bindHost: H, servers: localServers(), socketPath: HAPROXY_SOCKET, tenantAffinity }),
  );
  return file;
}

export function startHaproxy(): void {
  const file = writeHaproxyConfig();
  startProcess({ name: topology.haproxy.name, command: 'haproxy', args: ['-db', '-f', file] });
}

async function ctlInit(): Promise<string> {
  const { stdout } = await run(
    process.execPath,
    [join(REPO_ROOT, 'dist', 'control-plane', 'cli.js'), 'init'],
    {
      env: { ...process.env, ...stackEnv() },
    },
  );
  return stdout.trim().split('\n').at(-1) ?? '';
}

async function migrate(): Promise<string> {
  const cli = join(REPO_ROOT, 'dist', 'src', 'db', 'migrate-cli.js');
  if (!existsSync(cli)) return 'no migrations runner yet';
  const { stdout } = await run(process.execPath, [cli], {
    env: { ...process.env, ...stackEnv() },
    cwd: REPO_ROOT,
  });
  return stdout.trim().split('\n').at(-1) ?? 'migrated';
}

export async function up(
  log: (s: string) => void = console.log,
): Promise<{ started: string[]; seconds: number }> {
  const t0 = Date.now();
  checkBinaries();
  const specs = processSpecs();
  const alreadyRunning = specs.filter((s) => runningPid(s.name) !== undefined).map((s) => s.name);
  const optional = new Set<string>(workerBuilt() ? [] : [topology.worker.name]);
  if (specs.every((s) => alreadyRunning.includes(s.name) || optional.has(s.name))) {
    const healthy = await Promise.all(
      specs.filter((s) => alreadyRunning.includes(s.name)).map((s) => s.probe()),
    );
    if (healthy.every(Boolean)) {
      log(`stack already up: ${alreadyRunning.length} processes running and healthy; nothing changed`);
      return { started: [], seconds: (Date.now() - t0) / 1000 };
    }
  }
  const foreign = await foreignPortUsers(
    specs.filter((s) => runningPid(s.name) === undefined && s.port).map((s) => s.port!),
  );
  if (foreign.length > 0) throw new Error(foreign.join('\n'));
  mkdirSync(STATE_DIR, { recursive: true });
  const started: string[] = [];
  const need = (name: string) => runningPid(name) === undefined;
  const launch = (name: string, fn: () => unknown) => {
    if (!need(name)) return;
    if (fn() !== false) started.push(name);
  };

  const build = buildIfStale(log);
  launch(topology.etcd.name, startEtcd);
  launch(topology.redis.name, startRedis);
  launch(topology.rabbitmq.name, startRabbit);
  const nodes = topology.shards.flatMap((s) => [
    { node: s.master, replica: false },
    ...s.replicas.map((r) => ({ node: r, replica: true })),
  ]);
  await Promise.all(
    nodes.map(async ({ node, replica }) => {
      if (!need(node.name)) return;
      await initDatadir(node);
      startMariaDb(node, { replica });
      started.push(node.name);
    }),
  );
  await build;
  launch(topology.smtp.name, startSmtpSink);

  await waitUntil(
    'etcd',
    async () => (await httpStatus(`http://${H}:${topology.etcd.port}/health`)) === 200,
    30_000,
    topology.etcd.name,
  );
  const pw = dbPassword();
  await Promise.all(
    topology.shards.map(async (s) => {
      await waitForMariaDb(s.master);
      await setupMaster(s.master, pw);
      for (const r of s.replicas) {
        await waitForMariaDb(r);
        await setupReplica(r, s.master);
      }
    }),
  );
  log(`etcd: ${await ctlInit()}`);
  log(`migrations: ${await migrate()}`);

  for (const api of topology.apis) launch(api.id, () => startApi(api.id));
  await waitUntil('RabbitMQ', () => portOpen(topology.rabbitmq.port), 60_000, topology.rabbitmq.name);
  launch(topology.worker.name, startWorker);
  launch(topology.haproxy.name, startHaproxy);
  launch(topology.lbSync.name, startLbSync);
  await waitUntil(
    `HAProxy :${topology.haproxy.port}/health/ready`,
    async () => (await httpStatus(`http://${H}:${topology.haproxy.port}/health/ready`)) === 200,
    60_000,
    topology.haproxy.name,
  );
  const seconds = (Date.now() - t0) / 1000;
  if (started.length === 0) {
    log(`stack already up: ${alreadyRunning.length} processes running; nothing changed`);
  } else {
    log(`stack up in ${seconds.toFixed(1)} s; started ${started.length}: ${started.join(', ')}`);
  }
  return { started, seconds };
}

export async function down(log: (s: string) => void = console.log): Promise<string[]> {
  const order = [
    topology.haproxy.name,
    topology.lbSync.name,
    ...topology.apis.map((a) => a.id),
    topology.worker.name,
    topology.smtp.name,
    ...topology.shards.flatMap((s) => [...s.replicas.map((r) => r.name), s.master.name]),
    topology.rabbitmq.name,
    topology.redis.name,
    topology.etcd.name,
  ];
  const stopped: string[] = [];
  // APIs drain for a few seconds on SIGTERM; stop independent processes in parallel
  await Promise.all(
    order.map(async (name) => {
      if (await stopProcess(name, { graceMs: 15_000 })) stopped.push(name);
    }),
  );
  log(stopped.length ? `stopped ${stopped.length}: ${stopped.join(', ')}` : 'nothing was running');
  return stopped;
}

export interface StatusRow {
  name: string;
  pid: number | undefined;
  port: number | undefined;
  state: 'running' | 'dead' | 'not started' | 'not built';
  healthy: boolean;
}

function workerBuilt(): boolean {
  return existsSync(join(REPO_ROOT, 'dist', 'src', 'entry', 'email-worker.js'));
}

export async function status(): Promise<StatusRow[]> {
  return Promise.all(
    processSpecs().map(async (s) => {
      const pid = readPid(s.name);
      const alive = pid !== undefined && isAlive(pid);
      if (s.name === topology.worker.name && !alive && !workerBuilt()) {
        return {
          name: s.name,
          pid: undefined,
          port: undefined,
          state: 'not built',
          healthy: true,
        } satisfies StatusRow;
      }
      return {
        name: s.name,
        pid,
        port: s.port,
        state: pid === undefined ? 'not started' : alive ? 'running' : 'dead',
        healthy: alive && (await s.probe()),
      } satisfies StatusRow;
    }),
  );
}

export { logFile };
