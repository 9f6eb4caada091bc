/**
 * `lb sync [--watch]`: push `lb/weights/*` to HAProxy's runtime API. One-shot by default;
 * with --watch it follows etcd live (the API's own EtcdConfigStore: validated values only, last
 * good kept, resync after compaction): a weight change is applied at once, and HAProxy is
 * polled every second (`show info`) so everything is re-applied after it restarts. Between
 * those events it leaves HAProxy alone: an instance's agent-check may lower its own weight while
 * it is degraded, and must not be fought. HAProxy or etcd being down is logged and retried; the
 * daemon never exits on its own.
 */
import { resolve } from 'node:path';
import { EtcdConfigStore } from '../../src/config/etcd-config-store.js';
import { createLogger } from '../../src/observability/logger.js';
import { topology } from '../../stack/topology.js';
import { loadState, readPrefix } from '../config-io.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { haproxyIdentity } from '../lb/haproxy-runtime.js';
import { WeightSync } from '../lb/weight-sync.js';

export interface LbSyncOptions {
  watch?: boolean;
  socket?: string;
  backend?: string;
  intervalMs?: string;
}

export async function lbSyncCommand(ctx: CtlContext, opts: LbSyncOptions): Promise<void> {
  const socketPath = resolve(
    opts.socket ?? process.env.SHARDGATE_HAPROXY_SOCKET ?? `${topology.stateDir}/${topology.haproxy.socket}`,
  );
  const backend = opts.backend ?? topology.haproxy.backend;
  const stamp = (line: string) => ctx.out(`${new Date().toISOString()} ${line}`);
  const sync = new WeightSync({ socketPath, backend, log: opts.watch ? stamp : ctx.out });

  if (!opts.watch) {
    const weights = loadState(await readPrefix(ctx)).snapshot.lbWeights;
    try {
      const sent = await sync.reconcile(weights);
      if (sent.length === 0) ctx.out(`haproxy already matches etcd (${weights.size} weight(s))`);
    } catch (error) {
      throw new UserError(`cannot reach HAProxy runtime API at ${socketPath}: ${(error as Error).message}`);
    }
    return;
  }

  const logger = createLogger({ base: { process: 'lb-sync' } });
  const store = new EtcdConfigStore({ client: ctx.etcd, prefix: ctx.prefix, logger });
  let running = false;
  let lastError = '';
  let appliedTo = '';
  let dirty = true;
  const tick = async () => {
    if (running || !store.status().loaded) return;
    running = true;
    try {
      const identity = await haproxyIdentity(socketPath);
      if (identity !== appliedTo || dirty) {
        dirty = false;
        await sync.reconcile(store.current().lbWeights);
        appliedTo = identity;
      }
      if (lastError) stamp('haproxy reachable again');
      lastError = '';
    } catch (error) {
      const message = (error as Error).message;
      if (message !== lastError) stamp(`haproxy not reachable (${message}); retrying`);
      lastError = message;
      dirty = true;
    } finally {
      running = false;
    }
  };
  store.onChange((_snap, changes) => {
    if (changes.some((c) => c.key.startsWith('lb/weights/'))) {
      dirty = true;
      void tick();
    }
  });
  stamp(`lb sync watching ${ctx.prefix}lb/weights/ → ${socketPath} backend ${backend}`);
  await store.start();
  void tick();
  const interval = setInterval(() => void tick(), Number(opts.intervalMs ?? 1000));
  await new Promise<void>((done) => {
    const stop = () => {
      clearInterval(interval);
      void store.close().then(done);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
}
