/**
 * The local stack of CONTRACT.md §2 as plain processes: `up`, `down`, `status`. Every name and
 * port comes from stack/topology.ts; process specs from process-specs.ts.
 *
 * `up` (idempotent; one `up`/`down` at a time, stack/lock.ts):
 *   preflight (binaries, socket paths) → SIGCONT anything SIGSTOPped → if every built process
 *   runs and answers its probe: "stack already up …; nothing changed" → else clean up what is
 *   left of dead processes, refuse ports held by processes the stack did not start → in
 *   parallel: build dist/ when stale, etcd (waited for), Redis, RabbitMQ, the four MariaDB nodes
 *   (datadir once, master setup, GTID replication; a shard that etcd says failed over is left as
 *   the failover left it, failover.ts) → `shardgate-ctl init` → migrations → SMTP sink, API
 *   instances, email worker, HAProxy, lb sync → returns when HAProxy answers
 *   `GET /health/ready` with 200 and every process answers its probe. On a failure it prints
 *   the tail of the failing process's log; what did start keeps running, and the next `up`
 *   starts only what is missing.
 * `down`: stops every process that has a pid file — edge, then apps, then data — by pid and
 *   process group (never by name), and leaves the data in `.stack/`.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import {
  ctlInit,
  lbSyncBuilt,
  migrate,
  startApi,
  startLbSync,
  startSmtpSink,
  startWorker,
  workerBuilt,
} from './app-processes.js';
import { buildIfStale } from './build.js';
import { etcdHealthy, startEtcd } from './etcd.js';
import { type FailedOverShard, failedOverShards, failoverNote } from './failover.js';
import { startHaproxy } from './haproxy.js';
import { withLock } from './lock.js';
import {
  initDatadir,
  replicationStatus,
  setupMaster,
  setupReplica,
  socketPath,
  startMariaDb,
  waitForMariaDb,
} from './mariadb.js';
import { HAPROXY_SOCKET, LOCK_FILE, PID_DIR, STATE_DIR } from './paths.js';
import { checkBinaries, checkSocketPaths, foreignPortUsers } from './preflight.js';
import { httpStatus } from './probes.js';
import { type ProcessState, processes, waitUntil } from './process-manager.js';
import { type ProcessSpec, processSpecs, type Tier } from './process-specs.js';
import { awaitRabbit, startRabbit } from './rabbitmq.js';
import { startRedis } from './redis.js';
import { dbPassword } from './stack-env.js';
import { type MariaDbNode, topology } from './topology.js';
import { haproxyUrl } from './urls.js';

export { stackEnv } from './stack-env.js';

type Log = (line: string) => void;

export interface StatusRow {
  name: string;
  pid: number | undefined;
  /** the main port (ports[0]) */
  port: number | undefined;
  ports: number[];
  /** `retired`: a shard's old master after a failover, stopped on purpose (counts as healthy) */
  state: ProcessState | 'not built' | 'retired';
  /** running and answering its probe (a `not built` process counts as healthy: nothing to run) */
  healthy: boolean;
  detail?: string;
}

async function replicaDetail(node: MariaDbNode): Promise<string | undefined> {
  try {
    const r = await replicationStatus(node);
    if (!r) return 'replication not configured';
    const lag = r.secondsBehind === 'NULL' || r.secondsBehind === '' ? '?' : `${r.secondsBehind}s`;
    return `replication io=${r.io} sql=${r.sql} lag=${lag}${r.lastError ? ` error: ${r.lastError}` : ''}`;
  } catch {
    return undefined;
  }
}

const replicas = new Map(topology.shards.flatMap((s) => s.replicas.map((r) => [r.name, r] as const)));

async function statusOf(spec: ProcessSpec, failover: Map<string, FailedOverShard>): Promise<StatusRow> {
  const state = processes.state(spec.name);
  const pid = processes.readPid(spec.name);
  const base = { name: spec.name, port: spec.ports[0], ports: spec.ports };
  if (!spec.built() && (state === 'not started' || state === 'dead')) {
    return { ...base, pid: undefined, state: 'not built', healthy: true, detail: 'not built yet' };
  }
  const failedOver = [...failover.values()];
  const retired = failedOver.find((f) => f.retired.name === spec.name);
  if (retired && (state === 'not started' || state === 'dead')) {
    return {
      ...base,
      pid: undefined,
      state: 'retired',
      healthy: true,
      detail: `retired: ${failoverNote(retired)}`,
    };
  }
  const promoted = failedOver.find((f) => f.promoted?.name === spec.name);
  if (promoted && state === 'running') {
    const healthy = await spec.probe();
    const detail = `master of shard ${promoted.shardId} since a failover${healthy ? '' : '; not answering its probe'}`;
    return { ...base, pid, state, healthy, detail };
  }
  const healthy = state === 'running' && (await spec.probe());
  let detail: string | undefined;
  if (state === 'dead') detail = `exited; see ${processes.logFile(spec.name)}`;
  else if (state === 'stopped') detail = 'SIGSTOPped';
  else if (state === 'running' && !healthy) detail = 'not answering its probe';
  const replica = replicas.get(spec.name);
  if (replica && state === 'running') {
    const r = await replicaDetail(replica);
    if (r) detail = detail ? `${detail}; ${r}` : r;
  }
  return { ...base, pid: state === 'not started' ? undefined : pid, state, healthy, detail };
}

/** `failover`: the failed-over shards when the caller has them (etcd is read otherwise) */
export async function status(failover?: Map<string, FailedOverShard>): Promise<StatusRow[]> {
  const shards = failover ?? (await failedOverShards());
  return Promise.all(processSpecs().map((s) => statusOf(s, shards)));
}

function logSize(name: string): number {
  try {
    return statSync(processes.logFile(name)).size;
  } catch {
    return 0;
  }
}

/** The last `lines` lines a process logged since byte `from` (its log's size when `up` began). */
function tailSince(name: string, from: number, lines = 20): string {
  const file = processes.logFile(name);
  if (!existsSync(file)) return '(no log)';
  const text = readFileSync(file).subarray(from).toString('utf8').trimEnd();
  return text === '' ? '(nothing logged)' : text.split('\n').slice(-lines).join('\n');
}

/** What is not healthy, each with what it logged during this `up`. */
async function failureReport(logStart: Map<string, number>): Promise<string> {
  const rows = (await status()).filter((r) => !r.healthy && r.state !== 'not started');
  if (rows.length === 0) return '';
  return rows
    .map(
      (r) =>
        `--- ${r.name}: ${r.state}${r.detail ? ` (${r.detail})` : ''}; ${processes.logFile(r.name)}:\n${tailSince(r.name, logStart.get(r.name) ?? 0)}`,
    )
    .join('\n');
}

export interface UpResult {
  /** processes this `up` started */
  started: string[];
  /** processes this `up` found SIGSTOPped and continued */
  resumed: string[];
  seconds: number;
}

export async function up({ log = console.log }: { log?: Log } = {}): Promise<UpResult> {
  checkBinaries();
  checkSocketPaths([
    HAPROXY_SOCKET,
    ...topology.shards.flatMap((s) => [s.master, ...s.replicas]).map(socketPath),
  ]);
  return withLock(LOCK_FILE, () => upLocked(log), { log });
}

async function upLocked(log: Log): Promise<UpResult> {
  const t0 = Date.now();
  const specs = processSpecs();
  const logStart = new Map(specs.map((s) => [s.name, logSize(s.name)]));
  const resumed = specs.filter((s) => processes.resume(s.name)).map((s) => s.name);
  if (resumed.length > 0) log(`continued SIGSTOPped: ${resumed.join(', ')}`);

  if (resumed.length > 0) {
    // a continued process needs a moment to answer again
    await waitUntil('continued processes', async () => (await status()).every((r) => r.healthy), 5_000).catch(
      () => {},
    );
  }
  const failedOverNow = await failedOverShards();
  const before = await Promise.all(specs.map((s) => statusOf(s, failedOverNow)));
  if (before.every((r) => r.healthy)) {
    for (const f of failedOverNow.values()) log(failoverNote(f));
    const running = before.filter((r) => r.state === 'running').length;
    log(
      resumed.length === 0
        ? `stack already up: ${running} processes running and healthy; nothing changed`
        : `stack up: ${running} processes running and healthy; nothing else changed`,
    );
    return { started: [], resumed, seconds: (Date.now() - t0) / 1000 };
  }

  // leftovers of dead processes (e.g. children of a killed leader still in its group) are ours: stop
  // them, so that their ports are free and not mistaken for someone else's
  await Promise.all(
    specs.filter((s) => processes.state(s.name) === 'dead').map((s) => processes.stop(s.name)),
  );
  const need = (name: string) => processes.livePid(name) === undefined;
  const foreign = await foreignPortUsers(specs.filter((s) => need(s.name)).flatMap((s) => s.ports));
  if (foreign.length > 0) throw new Error(foreign.join('\n'));

  mkdirSync(STATE_DIR, { recursive: true });
  const started: string[] = [];
  async function launch(name: string, start: () => unknown): Promise<boolean> {
    if (!need(name)) return false;
    await start();
    started.push(name);
    return true;
  }

  // steps running in the background; on a failure they are let finish before `up` reports, so
  // that no setup is cut off half-way by the process exiting
  const inFlight: Promise<unknown>[] = [];
  const background = <T>(p: Promise<T>): Promise<T> => {
    inFlight.push(p);
    p.catch(() => {}); // awaited later; an early rejection is not unhandled
    return p;
  };
  try {
    const build = background(buildIfStale(log));
    await launch(topology.etcd.name, startEtcd);
    // the shard map decides which servers are masters: a failed-over shard is left as it is
    await waitUntil('etcd /health', etcdHealthy, 30_000, topology.etcd.name);
    const failover = await failedOverShards();
    for (const f of failover.values()) log(failoverNote(f));
    await launch(topology.redis.name, startRedis);
    const rabbit = background(
      (await launch(topology.rabbitmq.name, startRabbit)) ? awaitRabbit() : Promise.resolve(),
    );

    const pw = dbPassword();
    const databases = background(
      Promise.all(
        topology.shards.map(async (shard) => {
          const startNode = async (node: MariaDbNode, replica: boolean) => {
            await launch(node.name, async () => {
              await initDatadir(node);
              startMariaDb(node, { replica });
            });
            await waitForMariaDb(node);
          };
          const failedOver = failover.get(shard.id);
          if (failedOver) {
            if (failedOver.promoted) await startNode(failedOver.promoted, false);
            return;
          }
          await Promise.all([
            startNode(shard.master, false),
            ...shard.replicas.map((r) => startNode(r, true)),
          ]);
          await setupMaster(shard.master, pw);
          for (const r of shard.replicas) await setupReplica(r, shard.master);
        }),
      ),
    );

    await build;
    await launch(topology.smtp.name, startSmtpSink);
    log(`etcd: ${await ctlInit()}`);
    await databases;
    log(`migrations: ${await migrate()}`);

    for (const api of topology.apis) await launch(api.id, () => startApi(api.id));
    if (workerBuilt()) {
      await rabbit;
      await launch(topology.worker.name, startWorker);
    } else log(`${topology.worker.name}: not built yet (dist/src/entry/email-worker.js missing)`);
    await launch(topology.haproxy.name, startHaproxy);
    if (lbSyncBuilt()) await launch(topology.lbSync.name, startLbSync);
    else log(`${topology.lbSync.name}: not built yet (shardgate-ctl lb sync missing)`);
    await rabbit;

    await waitUntil(
      `HAProxy :${topology.haproxy.port}/health/ready`,
      async () => (await httpStatus(`${haproxyUrl}/health/ready`)) === 200,
      60_000,
    );
    await waitUntil(
      'every process to answer its probe',
      // the shard map read once above: not two etcdctl runs per poll
      async () => (await status(failover)).every((r) => r.healthy),
      15_000,
    );
  } catch (error) {
    await Promise.allSettled(inFlight);
    const message = error instanceof Error ? error.message : String(error);
    const report = await failureReport(logStart);
    throw new Error(report ? `${message}\n${report}` : message);
  }

  const seconds = (Date.now() - t0) / 1000;
  log(
    started.length === 0
      ? `stack up in ${seconds.toFixed(1)} s; nothing needed starting`
      : `stack up in ${seconds.toFixed(1)} s; started ${started.length}: ${started.join(', ')}`,
  );
  return { started, resumed, seconds };
}

const TIERS: Tier[] = ['edge', 'app', 'data'];

export function down({ log = console.log }: { log?: Log } = {}): Promise<string[]> {
  return withLock(LOCK_FILE, () => downLocked(log), { log });
}

async function downLocked(log: Log): Promise<string[]> {
  const specs = processSpecs();
  const known = new Set(specs.map((s) => s.name));
  // pid files of names no longer in the topology are still ours: stop them with the data tier
  const strays = existsSync(PID_DIR)
    ? readdirSync(PID_DIR)
        .filter((f) => f.endsWith('.pid'))
        .map((f) => f.slice(0, -4))
        .filter((n) => !known.has(n))
    : [];
  const stopped: string[] = [];
  for (const tier of TIERS) {
    const names = [
      ...specs.filter((s) => s.tier === tier).map((s) => s.name),
      ...(tier === 'data' ? strays : []),
    ];
    await Promise.all(
      names.map(async (name) => {
        if (await processes.stop(name, { graceMs: 10_000 })) stopped.push(name);
      }),
    );
  }
  log(stopped.length > 0 ? `stopped ${stopped.length}: ${stopped.join(', ')}` : 'nothing was running');
  return stopped;
}

export const logFile = processes.logFile;
