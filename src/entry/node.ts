/**
 * Node entry of one API instance (cluster mode): parse env, build the real adapters, serve
 * createApp() on @hono/node-server, and shut down gracefully on SIGTERM/SIGINT:
 * readiness goes 503 (HAProxy drains us), in-flight requests finish, the etcd registration is
 * removed, then the process exits. A second signal exits at once.
 */
import { createServer, type ServerOptions } from 'node:http';
import { hostname } from 'node:os';
import { getRequestListener, type HttpBindings, serve } from '@hono/node-server';
import { BODY_LIMIT_BYTES, createApp } from '../app.js';
import { LOGIN_THROTTLE_LABEL, RedisLoginThrottle } from '../auth/redis-login-throttle.js';
import type { EpochWrite } from '../cache/cache-epoch.js';
import { CacheEpochRetirer } from '../cache/cache-epoch.js';
import { etcdEpochWrite } from '../cache/etcd-cache-epoch.js';
import { guardedByBreaker } from '../cache/guarded-by-breaker.js';
import { MASTER_HISTORY_RESETS, MasterHistoryMarks } from '../cache/master-history-marks.js';
import { ReadCache } from '../cache/read-cache.js';
import { RedisCacheStore } from '../cache/redis.js';
import { TenantEpochRetirers } from '../cache/tenant-epoch-retirers.js';
import { registerConfigMetrics } from '../config/config-metrics.js';
import { etcdAuthRefusal } from '../config/etcd-auth-refusal.js';
import { createEtcdClient } from '../config/etcd-client.js';
import { EtcdConfigStore } from '../config/etcd-config-store.js';
import { routeGrpcLog } from '../config/grpc-log.js';
import { InstanceRegistration } from '../config/instance-registration.js';
import { INSTANCE_ID_PATTERN, tenantCacheEpochKey } from '../config/schema.js';
import { nodeDerivedMac } from '../crypto/node-derived-mac.js';
import { createDataServices } from '../db/create-data-services.js';
import { migrationJournal } from '../db/migrations-folder.js';
import { EnvError, etcdCredentials, parseEnv, reachableHost } from '../env.js';
import { LogDestination } from '../observability/log-destination.js';
import { createLogger } from '../observability/logger.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { reportAfterWrites, WritesInFlight } from '../routing/writes-in-flight.js';
import { startAgentCheckServer } from './agent-check-server.js';
import { buildLabel, readBuildInfo, registerBuildInfo } from './build-info.js';
import { askKernel, callerGoneOf } from './caller-gone.js';
import { installClientErrorHandler } from './client-error.js';
import { softOpenFiles, warnIfFewOpenFiles } from './file-limit.js';
import { incomingHeader } from './incoming-header.js';
import { NoContentResponse } from './no-content-response.js';
import { installExpectContinue, preReadBodies, preReadBodyOf } from './pre-read-body.js';
import { guardRawRequests, installRawRequestHandlers, requestErrorResponse } from './raw-request-guard.js';
import { swaggerUiFiles } from './swagger-ui-files.js';

function loadEnv() {
  try {
    return parseEnv(process.env, { require: ['SHARDGATE_JWT_SECRET', 'SHARDGATE_DB_PASSWORD'] });
  } catch (error) {
    if (error instanceof EnvError) {
      console.error(`shardgate: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

const env = loadEnv();
const build = readBuildInfo();
const instanceId = env.SHARDGATE_INSTANCE_ID ?? hostname();
// its registration (instances/<id>) and weight key must be valid keys: one the schema rejects is
// not seen by `shardgate-ctl status` or `lb`, and `tenants delete-rows` refuses while it is there
if (!INSTANCE_ID_PATTERN.test(instanceId)) {
  console.error(
    `shardgate: this host's name "${instanceId}" is no valid instance id (must match ${INSTANCE_ID_PATTERN.source}): set SHARDGATE_INSTANCE_ID`,
  );
  process.exit(1);
}
// this process, apart from an earlier or later one of the same id (registration, idempotency claims)
const startedAt = new Date().toISOString();
// a log destination that refuses lines (a full disk) drops and counts them: it never stops the
// process (log-destination.ts)
const logDestination = new LogDestination();
const logger = createLogger({
  level: env.LOG_LEVEL,
  base: { instance: instanceId },
  destination: logDestination,
});
routeGrpcLog(logger);
// below the documented minimum the instance may fail to start with misleading errors (EMFILE
// reported as `Cannot find package`) or run short of descriptors under load (file-limit.ts)
warnIfFewOpenFiles(logger, 'API instance');
const etcd = createEtcdClient({ endpoints: env.SHARDGATE_ETCD_ENDPOINTS, auth: etcdCredentials(env) });
const config = new EtcdConfigStore({
  client: etcd,
  prefix: env.SHARDGATE_ETCD_PREFIX,
  logger,
  dbHosts: env.SHARDGATE_DB_HOSTS,
});
const registration = new InstanceRegistration({
  client: etcd,
  prefix: env.SHARDGATE_ETCD_PREFIX,
  instanceId,
  startedAt,
  build: buildLabel(build),
  url: `http://${reachableHost(env.SHARDGATE_LISTEN_HOST)}:${env.PORT}`,
  logger,
  onRefused: (line) => config.noteRefusal('instance registration', line),
});
// Re-register only when the config revision moves: our own registration write must not loop.
// A revision is reported once the writes it refuses have finished (writes-in-flight.ts): a tenant
// move waits for this report before it copies the tenant's rows.
const writesInFlight = new WritesInFlight();
reportAfterWrites(
  config,
  writesInFlight,
  (revision) =>
    registration.update(
      revision,
      config
        .status()
        .rejected.filter((r) => r.key.startsWith('tenants/'))
        .map((r) => r.key.slice('tenants/'.length)),
    ),
  (revision, held) =>
    logger.warn(
      { revision, held },
      'config revision reported though writes it refuses are still held (a leaked hold: a bug)',
    ),
);

const metrics = createPromMetrics({ defaultLabels: { instance: instanceId }, softOpenFiles });
logDestination.countDropsIn(metrics);
registerConfigMetrics(metrics, config);
registerBuildInfo(metrics, build);
// a cache call's slowness is the time the event loop waited idle for it, not the time it was
// busy with other requests meanwhile (circuit-breaker.ts `loopIdleMs`)
const breakers = new BreakerRegistry({
  config,
  logger,
  metrics,
  loopIdleMs: () => performance.nodeTiming.idleTime,
  softFileLimit: softOpenFiles,
});
// listed at /health/circuit-breakers from the start, as the MySQL breakers are, not only after
// the first call to Redis
breakers.get('redis', 'redis');
const cacheStore = new RedisCacheStore({
  url: env.SHARDGATE_REDIS_URL,
  logger,
  onReady: () => breakers.get('redis', 'redis').connectionRestored('redis connection ready again'),
});
/**
 * a cache epoch write whose refusal by etcd (auth enabled, no credentials) is shown at
 * /health/config as `refused` until one succeeds; other failures leave that as it is
 */
const reportingRefusals =
  (write: EpochWrite): EpochWrite =>
  async (value) => {
    try {
      await write(value);
    } catch (error) {
      const refused = etcdAuthRefusal(error);
      if (refused) config.noteRefusal('cache epoch write', refused);
      throw error;
    }
    config.noteRefusal('cache epoch write', undefined);
  };
const writeEpoch = reportingRefusals(etcdEpochWrite(etcd, env.SHARDGATE_ETCD_PREFIX));
// both conditions last as long as a Redis outage: a line at once, then one per 30 s with a count
const epochMoves = new WarnLimiter(logger, 30_000);
const epochFailures = new WarnLimiter(logger, 30_000);
// tenants' own epochs apart: a tenant's move logged first must not hide the global one's line
const tenantEpochMoves = new WarnLimiter(logger, 30_000);
const tenantEpochFailures = new WarnLimiter(logger, 30_000);
const cache = new ReadCache({
  store: cacheStore,
  config,
  breakers,
  logger,
  metrics,
  epochs: new CacheEpochRetirer(
    async (value) => {
      await writeEpoch(value);
      epochMoves.warn({ epoch: value }, 'cache epoch moved: no instance serves an entry cached before it');
    },
    (error) =>
      epochFailures.warn(
        { err: String(error) },
        'could not move the cache epoch in etcd; entries a deferred invalidation should retire stay readable until it lands or they expire',
      ),
  ),
  tenantEpochs: new TenantEpochRetirers(
    (tenantId) => {
      const write = reportingRefusals(
        etcdEpochWrite(etcd, env.SHARDGATE_ETCD_PREFIX, tenantCacheEpochKey(tenantId)),
      );
      return async (value) => {
        await write(value);
        tenantEpochMoves.warn(
          { tenant: tenantId, epoch: value },
          "a tenant's cache epoch moved after a write of unknown outcome: no instance serves its entries cached before it",
        );
      };
    },
    (error, tenantId) =>
      tenantEpochFailures.warn(
        { tenant: tenantId, err: String(error) },
        "could not move a tenant's cache epoch in etcd; its entries from before a write of unknown outcome stay readable until they expire",
      ),
  ),
});
// a master's history that went back while no instance ran (all stopped for a restore) is found
// at start by the mark the instances keep in Redis; running instances see it in their probes
const historyResetsAtStart = metrics.counter(MASTER_HISTORY_RESETS);
const historyMarks = new MasterHistoryMarks(
  guardedByBreaker(cacheStore, breakers.get('redis', 'redis')),
  (shardId, from, to) => {
    logger.error(
      { shard: shardId, from, to },
      "the shard master's GTID position is behind the one instances last saw (RESET MASTER or a restore from a backup while no instance ran, or a new master without the last writes): writes answered before it may be gone; the shard's cache is cleared",
    );
    historyResetsAtStart.inc({ shard: shardId });
    cache.forgetShard(shardId);
  },
);
const dataServices = createDataServices({
  env,
  processEnv: process.env,
  config,
  logger,
  breakers,
  metrics,
  instanceId,
  loopIdleMs: () => performance.nodeTiming.idleTime,
  onMasterHistoryReset: (shardId) => cache.forgetShard(shardId),
  onMasterPosition: (shardId, position) => historyMarks.seen(shardId, position),
  // each shard's schema is compared with this build's journal (db/schema-watch.ts)
  migrations: migrationJournal(),
});
// its own connection to the cache's Redis, through the same `redis` breaker; fails open
const loginThrottle = new RedisLoginThrottle({
  url: env.SHARDGATE_REDIS_URL,
  breakers,
  logger,
  metrics,
  // loadEnv required the secret; its own label keeps these MACs apart from every token's
  keyMac: nodeDerivedMac({ secret: env.SHARDGATE_JWT_SECRET!, label: LOGIN_THROTTLE_LABEL }),
  // key rotation: the counts under the other secret of a rolling change are read too
  acceptedKeyMac:
    env.SHARDGATE_JWT_SECRET_ACCEPTED === undefined
      ? undefined
      : nodeDerivedMac({ secret: env.SHARDGATE_JWT_SECRET_ACCEPTED, label: LOGIN_THROTTLE_LABEL }),
});

const docs = swaggerUiFiles();
if (!docs.assets) logger.warn({ reason: docs.reason }, '/docs loads Swagger UI from jsDelivr');

let draining = false;
const app = createApp({
  instanceId,
  startedAt,
  config,
  logger,
  metrics,
  breakers,
  cache,
  loginThrottle,
  ...dataServices.services,
  lifecycle: { isDraining: () => draining },
  preReadBody: (c) => preReadBodyOf((c.env as HttpBindings | undefined)?.incoming),
  writesInFlight,
  docsAssets: docs.assets,
  callerGone: (c, atCommit) =>
    callerGoneOf((c.env as HttpBindings | undefined)?.incoming, atCommit ? askKernel : undefined),
  requestHeader: (c, name) => {
    const incoming = (c.env as HttpBindings | undefined)?.incoming;
    return incoming ? incomingHeader(incoming, name) : c.req.header(name);
  },
});

// POST bodies are read off the socket before Hono sees the request (pre-read-body.ts); Hono's
// own clean-up of unread bodies stays off, as that module requires. Bound to
// SHARDGATE_LISTEN_HOST only (loopback unless the deployment says otherwise), like the agent port.
// The request listener is @hono/node-server's own, made here rather than by `serve` (which passes
// no `errorHandler`) so that a request it cannot build a URL of is answered as problem+json.
/**
 * A request (headers and body) must have arrived within this, else 408 problem+json
 * (client-error.ts) and the connection closed; Node's default is 300 s, so a client that sent part
 * of a body held a connection for 5 minutes (an outside check, straight to an instance). Above
 * HAProxy's own 10 s (stack/haproxy-config.ts), which answers such a client first on the public
 * path. Only the request's arrival: a handler may take longer, and an idle keep-alive connection
 * is not a request. Checked every CONNECTIONS_CHECK_MS.
 */
const REQUEST_TIMEOUT_MS = 15_000;
const CONNECTIONS_CHECK_MS = 1000;
const rawOptions = { logger, servedBy: instanceId, metrics };
const requestListener = getRequestListener(app.fetch, {
  hostname: env.SHARDGATE_LISTEN_HOST,
  autoCleanupIncoming: false,
  errorHandler: (error) => requestErrorResponse(error, rawOptions),
});
const server = serve(
  {
    fetch: app.fetch,
    port: env.PORT,
    hostname: env.SHARDGATE_LISTEN_HOST,
    autoCleanupIncoming: false,
    createServer: ((options: ServerOptions) =>
      createServer(
        // a 204 without the Content-Type @hono/node-server would add (no-content-response.ts);
        // a request without Host is answered by guardRawRequests, as problem+json
        {
          ...options,
          ServerResponse: NoContentResponse,
          requireHostHeader: false,
          requestTimeout: REQUEST_TIMEOUT_MS,
          connectionsCheckingInterval: CONNECTIONS_CHECK_MS,
        },
        guardRawRequests(preReadBodies(requestListener, BODY_LIMIT_BYTES), rawOptions),
      )) as typeof createServer,
  },
  (info) => {
    logger.info({ host: env.SHARDGATE_LISTEN_HOST, port: info.port }, 'listening');
  },
);
installClientErrorHandler(server, rawOptions);
installRawRequestHandlers(server, rawOptions);
installExpectContinue(server, BODY_LIMIT_BYTES);
// Keep idle keep-alive connections open longer than HAProxy's `timeout http-keep-alive`, so
// HAProxy never reuses a connection Node has just closed (a source of spurious 502s).
// headersTimeout counts from a request's first byte, not over the idle gap before it (Node 20: a
// 2 s headersTimeout, 5 s idle, the next request answered), so it need not exceed keepAliveTimeout;
// it must not exceed requestTimeout, which Node then never enforces (seen with 66 s against 2 s).
if ('keepAliveTimeout' in server) {
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = REQUEST_TIMEOUT_MS;
}

const agent =
  env.SHARDGATE_AGENT_PORT === undefined
    ? undefined
    : startAgentCheckServer({
        host: env.SHARDGATE_LISTEN_HOST,
        port: env.SHARDGATE_AGENT_PORT,
        services: { breakers, logger, config, instanceId },
        draining: () => draining,
        initialWeight: env.SHARDGATE_LB_INITIAL_WEIGHT,
      });

void config.start();

/**
 * Drain, then stop in bounded time: /health/ready answers 503 for SHARDGATE_DRAIN_MS (HAProxy
 * takes the instance out), then the server stops accepting and idle connections close.
 * Requests still open get SHARDGATE_SHUTDOWN_TIMEOUT_MS to finish; after that their connections
 * are closed (a client that never sends the rest of its body cannot hold the process), and if
 * closing the adapters hangs too, the process exits 1 five seconds later.
 */
/** how long a stopping instance tries to deliver deferred cache invalidations (ReadCache.flushPending) */
const SHUTDOWN_FLUSH_MS = 3000;

async function shutdown(signal: string): Promise<void> {
  if (draining) process.exit(1);
  draining = true;
  logger.info({ signal }, 'draining');
  await new Promise((r) => setTimeout(r, env.SHARDGATE_DRAIN_MS));
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  if ('closeIdleConnections' in server) server.closeIdleConnections();
  const deadline = setTimeout(() => {
    logger.warn(
      { timeoutMs: env.SHARDGATE_SHUTDOWN_TIMEOUT_MS },
      'requests still open at the shutdown deadline; closing their connections',
    );
    if ('closeAllConnections' in server) server.closeAllConnections();
  }, env.SHARDGATE_SHUTDOWN_TIMEOUT_MS);
  setTimeout(() => {
    logger.error({}, 'shutdown did not finish; exiting');
    process.exit(1);
  }, env.SHARDGATE_SHUTDOWN_TIMEOUT_MS + 5000).unref();
  await closed;
  clearTimeout(deadline);
  agent?.close();
  await registration.stop();
  // invalidations deferred while Redis was unreachable live only in this process: push them now
  const lost = await cache.flushPending(SHUTDOWN_FLUSH_MS);
  if (lost > 0) {
    logger.error(
      { invalidations: lost },
      'cache invalidations not delivered before exit (Redis unreachable): their entries may be served to readers without a consistency token until cache/ttl_seconds',
    );
  }
  cache.close();
  await cacheStore.close();
  await loginThrottle.close();
  await dataServices.close();
  await config.close();
  etcd.close();
  logger.info({}, 'stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
