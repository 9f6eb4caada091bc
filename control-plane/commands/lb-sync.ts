/**
 * `lb sync [--watch]`: push `lb/weights/*` to HAProxy's runtime API, and `cors/allowed_origins` to
 * its map of CORS origins (lb/cors-sync.ts: the CORS headers of HAProxy's own answers). One-shot by default;
 * with --watch it follows etcd live (the API's own EtcdConfigStore: validated values only, last
 * good kept, resync after compaction): a weight change is applied at once, and HAProxy is
 * polled every --interval-ms (`show info`) so everything is re-applied after it restarts (a
 * change applies to the changed instances' servers only); the
 * CORS map is compared on every poll too (nothing else writes it), and so is each server's maint or
 * drain set by hand in the backend, copied to its fallback (lb/admin-mirror.ts). Between those events it leaves
 * the weights alone: an instance's agent-check may lower its own weight while
 * it is degraded, and must not be fought. HAProxy or etcd being down is logged and retried; the
 * daemon never exits on its own, with one exception: a --backend that HAProxy does not have when
 * the daemon first reaches it is a wrong name, a user error (exit 1), as in one-shot mode. (If
 * HAProxy later restarts without it, that is logged and retried like an outage.)
 *
 * A weighted instance without a server in the backend is named in a warning (stderr one-shot; the
 * daemon's log with --watch, once per change of that set).
 *
 * One-shot, the weights are the ones in force (state-in-force.ts), as the daemon and the instances
 * hold them: a key the schema rejects (`abc`) keeps its last good value from etcd's history. One
 * with no such value (never valid, or compacted away) leaves that server's weight as it is, with a
 * warning: the key exists, so the haproxy.cfg weight of an absent key would be wrong to push.
 *
 * A server without an `lb/weights/<id>` key gets the weight haproxy.cfg gives it, in both modes: a
 * deleted key is a weight change like any other (the daemon applies it at once; a one-shot run
 * finds the server away from its configured weight). Weight 0 drains by weight, never by `state
 * drain`, so deleting it ends only that drain, not one set by hand or by the instance's agent-check
 * (see lb/weight-sync.ts).
 */
import { resolve } from 'node:path';
import { CORS_ORIGINS_KEY } from '../../src/config/cors-origins.js';
import { EtcdConfigStore } from '../../src/config/etcd-config-store.js';
import { routeGrpcLog } from '../../src/config/grpc-log.js';
import type { Env } from '../../src/env.js';
import { createLogger } from '../../src/observability/logger.js';
import { HAPROXY_SOCKET } from '../../stack/paths.js';
import { topology } from '../../stack/topology.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { AdminMirror } from '../lb/admin-mirror.js';
import { CorsSync } from '../lb/cors-sync.js';
import { haproxyIdentity, UnknownBackendError } from '../lb/haproxy-runtime.js';
import { SerialRuns } from '../lb/serial-runs.js';
import { WeightSync } from '../lb/weight-sync.js';
import { readPrefix } from '../prefix-read.js';
import { stateInForce } from '../state-in-force.js';
import { wholeNumber } from '../whole-number.js';

export interface LbSyncOptions {
  watch?: boolean;
  socket?: string;
  backend?: string;
  intervalMs?: string;
}

const WEIGHT_KEY = 'lb/weights/';

/** --interval-ms bounds: at least 100 ms, and at most an hour (far below setInterval's limit) */
const INTERVAL_MIN_MS = 100;
const INTERVAL_MAX_MS = 3_600_000;

export function parseIntervalMs(text: string | undefined): number {
  if (text === undefined) return 1000;
  const ms = wholeNumber(text, INTERVAL_MIN_MS, INTERVAL_MAX_MS);
  if (ms === undefined) {
    throw new UserError(
      `--interval-ms must be a whole number of milliseconds from ${INTERVAL_MIN_MS} to ${INTERVAL_MAX_MS}, got '${text}'`,
    );
  }
  return ms;
}

/**
 * The HAProxy runtime API socket: --socket, else SHARDGATE_HAPROXY_SOCKET (either relative to the
 * working directory), else the local stack's (stack/paths.ts: under the repository root, wherever
 * the command runs). Absolute.
 */
export function haproxySocketPath(
  socket: string | undefined,
  env: Pick<Env, 'SHARDGATE_HAPROXY_SOCKET'>,
): string {
  return resolve(socket ?? env.SHARDGATE_HAPROXY_SOCKET ?? HAPROXY_SOCKET);
}

export async function lbSyncCommand(ctx: CtlContext, opts: LbSyncOptions): Promise<void> {
  const intervalMs = parseIntervalMs(opts.intervalMs);
  // a one-shot sync polls nothing: an --interval-ms there would be silently ignored
  if (opts.intervalMs !== undefined && !opts.watch)
    throw new UserError('--interval-ms needs --watch (a one-shot sync does not poll HAProxy)');
  const socketPath = haproxySocketPath(opts.socket, ctx.env);
  const backend = opts.backend ?? topology.haproxy.backend;
  const stamp = (line: string) => ctx.out(`${new Date().toISOString()} ${line}`);
  // the daemon's lines carry a time; a one-shot run's warnings go to stderr
  const log = opts.watch ? stamp : ctx.out;
  const warn = opts.watch
    ? (line: string) => stamp(`warning: ${line}`)
    : (line: string) => ctx.warn(`lb sync: warning: ${line}`);
  const sync = new WeightSync({ socketPath, backend, log, warn });
  const cors = new CorsSync({ socketPath, log, warn });
  const mirror = new AdminMirror({ socketPath, backend, log });
  const noBackend = () => new UserError(`haproxy at ${socketPath} has no backend ${backend} (--backend)`);

  if (!opts.watch) {
    const { state, restored } = await stateInForce(ctx, await readPrefix(ctx));
    const weights = state.snapshot.lbWeights;
    const rejected = state.rejected.filter((r) => r.key.startsWith(WEIGHT_KEY));
    const held = new Set(
      rejected.map((r) => r.key.slice(WEIGHT_KEY.length)).filter((id) => !weights.has(id)),
    );
    try {
      const { sent, missing, unweighted, held: left } = await sync.reconcile(weights, held);
      // HAProxy answered the weights: a failure here is the map's, not a way to reach HAProxy
      const origins = await cors.reconcile(state.snapshot.cors.allowedOrigins).catch((error: Error) => {
        throw new UserError(
          `${sent.length > 0 ? 'weights applied, but ' : ''}CORS origins not applied to HAProxy at ${socketPath}: ${error.message}`,
        );
      });
      // after HAProxy answered: a refused run has its one error line and no other
      if (rejected.length > 0) {
        ctx.warn(
          `lb sync: warning: ${rejected
            .map((r) => {
              const id = r.key.slice(WEIGHT_KEY.length);
              const kept = held.has(id)
                ? `no last good value in etcd's history: server ${id} left at the weight it has`
                : `its last good value ${weights.get(id)}${restored.has(r.key) ? ` (revision ${restored.get(r.key)})` : ''} applies, as the instances keep it`;
              return `${ctx.prefix}${r.key} is rejected (${r.reason.replace(/; keeping last good value$/, '')}); ${kept}`;
            })
            .join('; ')}`,
        );
      }
      if (sent.length === 0 && !origins.changed) {
        const configured =
          unweighted.length > 0
            ? `; ${unweighted.length} server(s) without a weight at their haproxy.cfg weight`
            : '';
        const kept =
          left.length > 0 ? `; ${left.length} server(s) with a rejected weight left as they are` : '';
        const corsCount =
          origins.origins === undefined ? '' : `; ${CORS_ORIGINS_KEY}: ${origins.origins.length} origin(s)`;
        ctx.out(
          `haproxy already matches etcd (${weights.size - missing.length} weight(s) applied${configured}${kept}${corsCount})`,
        );
      }
    } catch (error) {
      if (error instanceof UnknownBackendError) throw noBackend();
      if (error instanceof UserError) throw error;
      throw new UserError(`cannot reach HAProxy runtime API at ${socketPath}: ${(error as Error).message}`);
    }
    return;
  }

  const logger = createLogger({ base: { process: 'lb-sync' } });
  // a daemon keeps its etcd client for hours: gRPC's own lines go to its log, as JSON
  routeGrpcLog(logger);
  // lb/weights and cors/allowed_origins only: the shards are no concern of this process, whose
  // environment lacks the instances' password variables (a shard naming one would be logged as
  // rejected here)
  const store = new EtcdConfigStore({ client: ctx.etcd, prefix: ctx.prefix, logger, processEnv: null });
  let lastError = '';
  let appliedTo = '';
  // the servers whose weight to reconcile on the next tick: the instances whose key changed, or
  // all of them (start, HAProxy restarted or unreachable). A change of one key reconciled every
  // server, setting back an agent-lowered weight of another (an outside check: api-2's agent had
  // it at 1, a put of lb/weights/api-1 made it 10 again).
  let pending: Set<string> | 'all' = 'all';
  let fail: (error: Error) => void = () => {};
  // set once a stop is asked for (below)
  let stopping = false;
  // the first error that asked for the stop, or came during it (a wrong --backend found by the
  // tick a signal's stop waits for): the exit code is the error's
  let stopError: Error | undefined;
  let corsError = '';
  let mirrorError = '';
  const tick = async () => {
    if (!store.status().loaded) return;
    let reached = false;
    try {
      const identity = await haproxyIdentity(socketPath);
      reached = true;
      if (identity !== appliedTo) pending = 'all';
      if (pending === 'all' || pending.size > 0) {
        const only = pending === 'all' ? undefined : pending;
        pending = new Set();
        await sync.reconcile(store.current().lbWeights, undefined, only);
        appliedTo = identity;
      }
      if (lastError) stamp('haproxy reachable again');
      lastError = '';
    } catch (error) {
      if (error instanceof UnknownBackendError && appliedTo === '') return fail(noBackend());
      const message = (error as Error).message;
      if (message !== lastError) stamp(`haproxy not reachable (${message}); retrying`);
      lastError = message;
      pending = 'all';
    }
    // a stop waits for this tick: the weights are sent, the rest is left for the next daemon
    // (each command may wait up to the runtime API's 2 s answer timeout)
    if (!reached || stopping) return;
    // every tick, whatever became of the weights: two reads when nothing differs, and a map
    // cleared by hand is refilled. A failure here leaves the weights alone (nothing `pending`).
    try {
      await cors.reconcile(store.current().cors.allowedOrigins);
      if (corsError) stamp('CORS origins in haproxy match etcd again');
      corsError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== corsError) stamp(`warning: CORS origins not applied to haproxy (${message}); retrying`);
      corsError = message;
    }
    // every tick too: an operator's maint or drain of a server, held in the fallback backend
    try {
      await mirror.run();
      if (mirrorError) stamp('maint/drain states mirrored to the fallback backend again');
      mirrorError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== mirrorError)
        stamp(`warning: maint/drain states not mirrored to the fallback backend (${message}); retrying`);
      mirrorError = message;
    }
  };
  // one tick at a time; a change during one gets one more right after it, and a stop waits for
  // the running one (below)
  const ticks = new SerialRuns(tick, (error) =>
    stamp(`warning: sync failed (${(error as Error).message}); retrying`),
  );
  store.onChange((_snap, changes) => {
    const weighted = changes.filter((c) => c.key.startsWith(WEIGHT_KEY));
    if (pending !== 'all') for (const c of weighted) pending.add(c.key.slice(WEIGHT_KEY.length));
    if (weighted.length > 0 || changes.some((c) => c.key === CORS_ORIGINS_KEY)) ticks.run();
  });
  // A stop (SIGTERM, SIGINT, or `fail`) is taken from before etcd is first read: one during the
  // start, which waits as long as etcd does not answer, ends it with no tick and exit 0. Without a
  // handler yet, the signal's default action killed the process outright (a supervisor's SIGTERM
  // during a slow start). A second signal once stopping has its default action again: it ends a
  // stop stuck on HAProxy.
  let interval: ReturnType<typeof setInterval> | undefined;
  const ended = new Promise<void>((done, failed) => {
    const stop = (error?: Error) => {
      stopError ??= error;
      if (stopping) return;
      stopping = true;
      clearInterval(interval);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      // the running tick's `set server` commands are finished first: the CLI exits once this
      // returns (cli.ts), which would cut them off and leave HAProxy's weights half set
      void ticks
        .close()
        .then(() => store.close())
        .then(() => (stopError ? failed(stopError) : done()));
    };
    const onSignal = () => stop();
    fail = stop;
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
  stamp(
    `lb sync watching ${ctx.prefix}${WEIGHT_KEY} and ${ctx.prefix}${CORS_ORIGINS_KEY} → ${socketPath} backend ${backend}`,
  );
  await Promise.race([store.start().catch((error: Error) => fail(error)), ended.catch(() => {})]);
  if (!stopping) {
    ticks.run();
    interval = setInterval(() => ticks.run(), intervalMs);
  }
  await ended;
}
