/**
 * `status [--json]`: the cluster as etcd describes it — revision, shards with hosts and tenant
 * counts, LB weights (naming a weighted instance that is not registered), breaker settings in
 * force, rejected keys, and the instances registered under their leases with the config revision
 * each has applied and what each answers at /health/ready right now, the breakers they report
 * open or half-open, and why an instance excludes a replica. On HAProxy's host also its
 * servers, and each instance HAProxy treats otherwise than etcd asks (lb/haproxy-view.ts).
 * With etcd not answering, what can be asked without it (status-without-etcd.ts), then exit 2.
 */

import { TENANT_STATUSES } from '../../src/config/schema.js';
import { topology } from '../../stack/topology.js';
import { appliedDifferences, differenceLine } from '../applied-differences.js';
import { alignColumns } from '../columns.js';
import type { CtlContext } from '../ctl-context.js';
import { EtcdUnreachableError } from '../ctl-errors.js';
import { breakerTrouble } from '../instance-breakers.js';
import { readiness } from '../instance-readiness.js';
import { instanceConfigs, rejectionsOf } from '../instance-rejections.js';
import { serverStateWord } from '../lb/haproxy-runtime.js';
import { haproxyView } from '../lb/haproxy-view.js';
import { recordedMoves } from '../move-record.js';
import { type PrefixRead, readPrefix } from '../prefix-read.js';
import { stateInForce } from '../state-in-force.js';
import { oneLine } from '../terminal-safe.js';
import { workerUrls } from '../worker-urls.js';
import { haproxySocketPath } from './lb-sync.js';
import { shardLines, shardRows } from './shards.js';
import { statusWithoutEtcd } from './status-without-etcd.js';

interface ReplicaLag {
  name: string;
  node: string;
  state: string;
  lagSeconds: number | null;
  /** why the instance does not read from it, when it does not */
  lastError?: string | null;
}

/** Live replica lag as a running instance measures it (the first registered one that answers). */
async function liveReplication(
  urls: string[],
): Promise<{ from: string; shards: Map<string, ReplicaLag[]> } | undefined> {
  for (const url of urls) {
    try {
      const res = await fetch(`${url}/health/replication`, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) continue;
      const body = (await res.json()) as { shards: { id: string; replicas: ReplicaLag[] }[] };
      return { from: url, shards: new Map(body.shards.map((s) => [s.id, s.replicas])) };
    } catch {
      /* try the next instance */
    }
  }
  return undefined;
}

/** what an open or half-open breaker does to its calls, in a `status` line */
function refusedLine(state: string): string {
  // half-open lets its trial calls through (an outside check read "refused at once" of one)
  return state === 'half_open'
    ? 'its calls are refused at once but its trials, which test whether it is back'
    : 'its calls are refused at once';
}

/** how many recorded moves the text lists */
const MOVES_LISTED = 20;

export async function statusCommand(ctx: CtlContext, opts: { json?: boolean }): Promise<void> {
  let read: PrefixRead;
  try {
    read = await readPrefix(ctx);
  } catch (error) {
    // exit 2 all the same, after what HAProxy, the instances and the workers say without etcd
    if (error instanceof EtcdUnreachableError) return statusWithoutEtcd(ctx, opts, error);
    throw error;
  }
  // an empty prefix is a fresh cluster, or a mistyped SHARDGATE_ETCD_PREFIX: say which to check
  if (read.entries.size === 0)
    ctx.warn(
      `no key under ${ctx.prefix} in etcd: a cluster not seeded yet (shardgate-ctl init), or SHARDGATE_ETCD_PREFIX is not the instances' prefix`,
    );
  // rejected keys count with their last good values, as the instances keep them
  const { state: s } = await stateInForce(ctx, read);
  const snap = s.snapshot;
  const urls = [...snap.instances.values()].map((i) => i.url);
  const socket = haproxySocketPath(undefined, ctx.env);
  const listed = workerUrls(ctx.env);
  // an instance answers the same two paths: listed as a worker, its breakers would be counted
  // twice and its rejected keys said to be a worker's
  const instanceByUrl = new Map([...snap.instances].map(([id, info]) => [info.url, id]));
  for (const url of listed.urls) {
    const id = instanceByUrl.get(url);
    if (id !== undefined)
      ctx.warn(`SHARDGATE_WORKER_URLS: ${url} is API instance ${id}, not an email worker; left out`);
  }
  const workers = { ...listed, urls: listed.urls.filter((url) => !instanceByUrl.has(url)) };
  const [live, ready, configs, found, troubled, workerConfigs, workerTrouble, moves] = await Promise.all([
    liveReplication(urls),
    readiness(urls),
    instanceConfigs(urls),
    haproxyView(socket, topology.haproxy.backend, snap),
    breakerTrouble([...snap.instances].map(([id, info]) => ({ id, url: info.url }))),
    // a worker answering /health/config is answering; its breakers as the instances'
    instanceConfigs(workers.urls),
    breakerTrouble(workers.urls.map((url) => ({ id: url, url }))),
    // unreadable (a role without read access to the records, etcd slow): said, not fatal
    recordedMoves(ctx).catch((error: unknown) => ({ error: (error as Error).message })),
  ]);
  const rejections = rejectionsOf(configs);
  const workerRejections = rejectionsOf(workerConfigs);
  // no socket at the default path: not HAProxy's host; at a path set on purpose: a problem to say
  const haproxy =
    found ??
    (ctx.env.SHARDGATE_HAPROXY_SOCKET === undefined
      ? undefined
      : {
          socket,
          backend: topology.haproxy.backend,
          servers: null,
          error: `no socket at ${socket} (SHARDGATE_HAPROXY_SOCKET)`,
          differences: [],
        });
  const ownRejection = new Set(s.rejected.map((r) => `${r.key}\n${r.reason}`));
  const byInstance = new Map(
    [...snap.instances].flatMap(([id, i]) => {
      const r = rejections.get(i.url);
      return r ? [[id, r] as const] : [];
    }),
  );
  const view = {
    etcd: { endpoints: ctx.env.SHARDGATE_ETCD_ENDPOINTS, prefix: ctx.prefix, revision: read.revision },
    /**
     * the least configRevision of an instance that has applied every key present; one that also
     * watched a later delete shows more (ConfigSnapshot.revision)
     */
    configRevision: snap.revision,
    /** every shard key, a rejected one with its `problem` (shards.ts shardRows) */
    shards: shardRows(read, s, byInstance).map((sh) => ({
      ...sh,
      replicaLag: live?.shards.get(sh.id) ?? null,
    })),
    lagFrom: live?.from ?? null,
    tenants: snap.tenants.size,
    /** how many tenants are not active, by status (none: `{}`) */
    tenantsNotActive: Object.fromEntries(
      TENANT_STATUSES.filter((st) => st !== 'active')
        .map((st) => [st, [...snap.tenants.values()].filter((t) => t.status === st).length] as const)
        .filter(([, n]) => n > 0),
    ),
    /** the tenants with a move record: `running` (its lock held) or `interrupted`; null: unread */
    moves: 'error' in moves ? null : moves,
    ...('error' in moves ? { movesError: moves.error } : {}),
    lbWeights: Object.fromEntries(snap.lbWeights),
    breakers: snap.breakers,
    /** the breakers the instances report open or half-open now (instance-breakers.ts) */
    openBreakers: troubled,
    // tenants' own epochs as a count, as the directory (a Map would read `{}`)
    cache: { ...snap.cache, tenantEpochs: snap.cache.tenantEpochs.size },
    replication: snap.replication,
    mail: snap.mail,
    cors: snap.cors,
    http: snap.http,
    /**
     * `rejected`: the keys the instance rejects and this command does not (its own environment
     * differs); null when it did not answer /health/config
     */
    instances: [...snap.instances].map(([id, info]) => ({
      id,
      ...info,
      health: ready.get(info.url),
      rejected: rejections.get(info.url)?.filter((r) => !ownRejection.has(`${r.key}\n${r.reason}`)) ?? null,
    })),
    /**
     * HAProxy's servers as its runtime socket shows them, and each difference from etcd; null
     * when there is no socket here (status run off HAProxy's host); `servers` null and `error`
     * when the socket could not be reached (a SHARDGATE_HAPROXY_SOCKET naming no socket included)
     */
    haproxy: haproxy ?? null,
    /** instances with an LB weight above 0 and no registration: down, or never started */
    unregisteredWeighted: [...snap.lbWeights]
      .filter(([id, weight]) => weight > 0 && !snap.instances.has(id))
      .map(([id]) => id),
    rejected: s.rejected,
    /**
     * the email workers asked (SHARDGATE_WORKER_URLS, else the local stack's when it answers):
     * `answering` at /health/config, the keys it rejects and this command does not (null when
     * not answering), and the breakers it reports open or half-open (`workerOpenBreakers`, whose
     * `instances` hold the worker urls)
     */
    workers: workers.urls
      .filter((url) => workers.explicit || workerRejections.has(url))
      .map((url) => ({
        url,
        answering: workerRejections.has(url),
        rejected:
          workerRejections.get(url)?.filter((r) => !ownRejection.has(`${r.key}\n${r.reason}`)) ?? null,
      })),
    workerOpenBreakers: workerTrouble,
    /**
     * settings an instance or worker enforces with another value than etcd's keys give
     * (applied-differences.ts): a rejected key whose last good value was compacted away
     */
    appliedDifferences: appliedDifferences(
      {
        breakers: snap.breakers,
        cache: snap.cache,
        replication: snap.replication,
        mail: snap.mail,
        cors: snap.cors,
        http: snap.http,
      },
      new Map([
        ...[...snap.instances].map(([id, i]) => [id, configs.get(i.url)?.applied] as const),
        ...workers.urls.map((url) => [`worker ${url}`, workerConfigs.get(url)?.applied] as const),
      ]),
    ),
  };
  if (opts.json) return ctx.out(JSON.stringify(view, null, 2));
  ctx.out(
    `etcd ${view.etcd.endpoints.join(',')} prefix ${view.etcd.prefix} revision ${view.etcd.revision}; config revision ${view.configRevision}`,
  );
  // lag is one instance's view (each measures its own): say whose
  ctx.out(live ? `shards (replica lag as ${live.from} measures it):` : 'shards:');
  const shardLine = shardLines(view.shards);
  for (const [i, sh] of view.shards.entries()) {
    ctx.out(`  ${shardLine[i]}`);
    for (const r of sh.replicaLag ?? []) {
      const lag = r.lagSeconds === null ? 'unknown' : `${r.lagSeconds.toFixed(1)} s`;
      const why = r.state !== 'admitted' && r.lastError ? `  (${oneLine(r.lastError)})` : '';
      ctx.out(`    ${r.node.padEnd(28)} ${r.state.padEnd(10)} lag ${lag}${why}`);
    }
    if (sh.replicaLag) continue;
    if (!live) ctx.out('    replica lag: unknown (no instance reachable)');
    else if (sh.problem)
      ctx.out(`    replica lag: not measured (${live.from} does not route to a shard whose key is rejected)`);
    else ctx.out(`    replica lag: unknown (not reported by ${live.from})`);
  }
  const notActive = Object.entries(view.tenantsNotActive).map(([st, n]) => `${n} ${st}`);
  ctx.out(`tenants: ${view.tenants}${notActive.length > 0 ? ` (${notActive.join(', ')})` : ''}`);
  if (view.moves === null) ctx.out(`moves: unknown (the move records could not be read: ${view.movesError})`);
  else if (view.moves.length > 0) {
    const shown = view.moves
      .slice(0, MOVES_LISTED)
      .map((m) =>
        m.state === 'running'
          ? `${m.tenant} (running)`
          : `${m.tenant} (interrupted: tenants show ${m.tenant})`,
      );
    const more = view.moves.length - shown.length;
    ctx.out(`moves: ${shown.join(', ')}${more > 0 ? `, and ${more} more (--json lists them)` : ''}`);
  }
  ctx.out(
    `lb weights: ${
      Object.entries(view.lbWeights)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ') || 'none'
    }${view.unregisteredWeighted.length > 0 ? `  (not registered: ${view.unregisteredWeighted.join(', ')})` : ''}`,
  );
  if (haproxy) {
    const servers = haproxy.servers
      ?.map((sv) => {
        return `${sv.name} ${serverStateWord(sv)} weight ${sv.weight}`;
      })
      .join(', ');
    ctx.out(
      servers === undefined
        ? `haproxy: socket ${haproxy.socket} could not be reached (${haproxy.error}); backend ${haproxy.backend} not asked`
        : `haproxy backend ${haproxy.backend}: ${servers}`,
    );
    for (const line of haproxy.differences) ctx.out(`  ! ${line}`);
  }
  ctx.out(
    `cache: enabled=${view.cache.enabled} ttl=${view.cache.ttlSeconds}s near_max_entries=${view.cache.nearMaxEntries}  replication: max_lag=${view.replication.maxLagSeconds}s ryw_timeout=${view.replication.rywTimeoutMs}ms max_latency=${view.replication.maxLatencyMs}ms  mail: outbox_retention=${view.mail.outboxRetentionHours}h  cors: ${view.cors.allowedOrigins.length === 0 ? 'no origin' : view.cors.allowedOrigins.join(',')}  hosts: ${view.http.allowedHosts.length === 0 || view.http.allowedHosts[0] === '*' ? 'any' : view.http.allowedHosts.join(',')}  access_log: ${view.http.accessLog}`,
  );
  ctx.out('breakers:');
  for (const [kind, b] of Object.entries(view.breakers)) {
    ctx.out(
      `  ${kind.padEnd(14)} ${Object.entries(b)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`,
    );
  }
  for (const b of view.openBreakers)
    ctx.out(
      `  ! ${oneLine(b.breaker)} ${b.state} on ${b.instances.join(', ')}: ${b.writesOnly ? 'its writes are refused at once (the server refuses them; reads pass)' : refusedLine(b.state)}`,
    );
  for (const d of view.appliedDifferences) ctx.out(`  ! ${oneLine(differenceLine(d))}`);
  ctx.out('instances:');
  if (view.instances.length === 0) ctx.out('  none registered');
  const instanceLines = alignColumns(
    view.instances.map((i) => [
      i.id,
      i.url,
      i.health ?? '',
      `config revision ${i.configRevision}${i.configRevision >= view.configRevision ? '' : ' (behind)'}`,
      `since ${i.startedAt}`,
      // which build each runs: a rolling deploy shows its progress (absent from older builds)
      i.build === undefined ? '' : `build ${oneLine(i.build)}`,
    ]),
  );
  for (const line of instanceLines) ctx.out(`  ${line}`);
  for (const r of view.rejected) ctx.out(`rejected ${ctx.prefix}${oneLine(r.key)}: ${oneLine(r.reason)}`);
  // the same rejection by several instances is one line naming them
  const byInstances = new Map<string, string[]>();
  for (const i of view.instances)
    for (const r of i.rejected ?? []) {
      const line = `${ctx.prefix}${oneLine(r.key)}: ${oneLine(r.reason)}`;
      byInstances.set(line, [...(byInstances.get(line) ?? []), i.id]);
    }
  for (const [line, ids] of byInstances) ctx.out(`rejected by ${ids.join(', ')} ${line}`);
  if (view.workers.length === 0) {
    // the local stack's default, not answering: status may well run where no worker is
    ctx.out(
      workers.urls.length === 0
        ? 'email workers: none listed (SHARDGATE_WORKER_URLS names only API instances)'
        : `email workers: none answering at ${workers.urls.join(', ')} (SHARDGATE_WORKER_URLS names yours)`,
    );
    return;
  }
  ctx.out('email workers:');
  for (const w of view.workers) ctx.out(`  ${w.url}  ${w.answering ? 'answering' : 'not answering'}`);
  for (const b of view.workerOpenBreakers)
    ctx.out(`  ! ${oneLine(b.breaker)} ${b.state} on ${b.instances.join(', ')}: ${refusedLine(b.state)}`);
  for (const w of view.workers)
    for (const r of w.rejected ?? [])
      ctx.out(`rejected by worker ${w.url} ${ctx.prefix}${oneLine(r.key)}: ${oneLine(r.reason)}`);
}
