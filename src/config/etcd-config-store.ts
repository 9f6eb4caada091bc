/**
 * Live config from etcd (CONTRACT.md §4).
 *
 * Protocol: read the whole prefix at revision R, validate it (ConfigState), then watch the prefix
 * from R + 1 so no change between the read and the watch is missed. Failure modes:
 * - etcd unreachable at start: retry the read with capped exponential backoff; `status().loaded`
 *   stays false (so `/health/ready` answers 503) until a first read succeeds.
 * - etcd lost later: the last good snapshot stays in force; status reports `connected: false`
 *   and the error; etcd3 re-establishes the watch stream from the last revision it saw.
 * - etcd refuses the read or the watch for its authentication or a role's permission (auth
 *   enabled, SHARDGATE_ETCD_USERNAME / _PASSWORD unset or wrong): as unreachable (retried, last
 *   good config), but the log line and `lastError` say `etcd refused: …` and what to set
 *   (etcd-auth-refusal.ts), not "etcd unreachable". A watch already open when auth was enabled
 *   goes on delivering: only a read or a new watch meets the refusal.
 * - watch cancelled (compaction of the revision it would resume from, or any server-side
 *   cancel): close it, re-read the whole prefix and re-watch from the new revision.
 * - a key invalid at the first read: a running instance keeps the last good value of a key that
 *   turns invalid, but a process that starts has none. So the first read looks for it in etcd's
 *   history (history-restore.ts, bounded): the newest earlier version accepted with everything
 *   else, or the deleted shard a tenant still names, is put in force and the current value
 *   rejected "keeping last good value", as a running instance would have done; without one the
 *   key stays rejected and unset.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { ConfigNotifier } from './config-notifier.js';
import { type ConfigSnapshot, foldChanges, type RawEvent } from './config-state.js';
import { configValueText } from './config-value-text.js';
import type { DbHostPolicy } from './db-hosts.js';
import { etcdAuthRefusal } from './etcd-auth-refusal.js';
import {
  applyRestorePlan,
  type Entry,
  etcdPutsReader,
  etcdVersionReader,
  planHistoryRestore,
} from './history-restore.js';
import type { ConfigListener, ConfigStatus, ConfigStore } from './interface.js';
import { loggedValue } from './logged-value.js';
import type { ProcessEnv } from './password-env.js';
import { BARRIER_KEY, CACHE_EPOCH_KEY, isCacheEpochKey, TENANT_CACHE_EPOCH_PREFIX } from './schema.js';

/** how often, and with what deadline, a store whose etcd is unreachable nudges it (startNudging) */
const NUDGE_MS = 500;
const NUDGE_DEADLINE_MS = 400;

export interface EtcdConfigStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** first and maximum delay between read attempts while etcd is unreachable */
  retryInitialMs?: number;
  retryMaxMs?: number;
  /** the servers a shard may name (SHARDGATE_DB_HOSTS, db-hosts.ts); absent = any */
  dbHosts?: DbHostPolicy;
  /**
   * the environment a shard's `passwordEnv` must be set in (password-env.ts): process.env unless
   * given; null for a process that connects to no shard (`lb sync --watch`), which checks none
   */
  processEnv?: ProcessEnv | null;
}

export class EtcdConfigStore implements ConfigStore {
  private readonly notifier: ConfigNotifier;
  /** the calls of other parts etcd refuses now (noteRefusal), with the line and since when */
  private readonly refusals = new Map<string, { line: string; since: string }>();
  private watcher: Watcher | undefined;
  private closed = false;
  private syncing: Promise<void> | undefined;
  /** last etcd header revision seen (read or watch) — includes instance registrations */
  private etcdRevision = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** while etcd is unreachable: the short reads that replace a stuck connection (nudge) */
  private nudger: ReturnType<typeof setInterval> | undefined;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly disconnectWarnings: WarnLimiter;
  /** `runtime/cache_epoch` changes at info: one line per 10 s (the moves between at debug) */
  private readonly epochLines: WarnLimiter;
  /** the same for the tenants' own epochs (`runtime/tenant_cache_epoch/<id>`), all of them together */
  private readonly tenantEpochLines: WarnLimiter;

  private readonly dbHosts: DbHostPolicy | undefined;
  private readonly processEnv: ProcessEnv | undefined;

  constructor({
    client,
    prefix,
    logger,
    retryInitialMs = 200,
    retryMaxMs = 1000,
    dbHosts,
    processEnv = process.env,
  }: EtcdConfigStoreOptions) {
    this.dbHosts = dbHosts;
    this.processEnv = processEnv ?? undefined;
    this.client = client;
    this.prefix = prefix;
    this.logger = logger.child({ component: 'config' });
    this.disconnectWarnings = new WarnLimiter(this.logger, 30_000);
    this.epochLines = new WarnLimiter(this.logger, 10_000, undefined, 'info');
    this.tenantEpochLines = new WarnLimiter(this.logger, 10_000, undefined, 'info');
    this.retryInitialMs = retryInitialMs;
    this.retryMaxMs = retryMaxMs;
    this.notifier = new ConfigNotifier(
      'etcd',
      (error) => this.logger.error({ err: error }, 'config listener failed'),
      { dbHosts, processEnv: this.processEnv },
    );
  }

  /** Start loading. Resolves after the first successful read, or never if etcd never answers. */
  start(): Promise<void> {
    return this.sync(this.retryInitialMs);
  }

  current(): ConfigSnapshot {
    return this.notifier.state.snapshot;
  }

  status(): ConfigStatus {
    return { ...this.notifier.status(), etcdRevision: this.etcdRevision };
  }

  /**
   * Another part of the process (`call`: the instance registration, the cache epoch writes)
   * reports that etcd refused it (`line`, etcd-auth-refusal.ts wording), or, with undefined, that
   * it succeeded again. Shown at /health/config as `refused` (`<call>: <line>`, the oldest one
   * still refused): the watch may go on without credentials on a stream opened before
   * `auth enable`, so `connected` alone hid that the process lacks them.
   */
  noteRefusal(call: string, line: string | undefined): void {
    if (line === undefined) this.refusals.delete(call);
    else this.refusals.set(call, { line, since: this.refusals.get(call)?.since ?? new Date().toISOString() });
    let oldest: [string, { line: string; since: string }] | undefined;
    for (const entry of this.refusals) if (!oldest || entry[1].since < oldest[1].since) oldest = entry;
    this.notifier.refused = oldest && `${oldest[0]}: ${oldest[1].line}`;
    this.notifier.refusedSince = oldest?.[1].since;
  }

  onChange(listener: ConfigListener): () => void {
    return this.notifier.subscribe(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.stopNudging();
    const w = this.watcher;
    this.watcher = undefined;
    if (w) await Promise.race([w.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
  }

  /** Full read + watch; on failure, retries itself with backoff. Concurrent calls share one run. */
  private sync(delayMs: number): Promise<void> {
    this.syncing ??= this.readAndWatch()
      .catch(async (error: unknown) => {
        this.markDisconnected(error);
        this.syncing = undefined;
        if (this.closed) return;
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, delayMs);
        });
        return this.sync(Math.min(delayMs * 2, this.retryMaxMs));
      })
      .finally(() => {
        this.syncing = undefined;
      });
    return this.syncing;
  }

  private async readAndWatch(): Promise<void> {
    const old = this.watcher;
    this.watcher = undefined;
    // a watcher etcd already cancelled never answers a cancel: never wait on it for long
    if (old) await Promise.race([old.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 500))]);
    const res = await this.client.getAll().prefix(this.prefix).exec();
    const revision = Number(res.header.revision);
    const entries = res.kvs.map((kv): [string, string, number] => [
      this.relative(kv),
      configValueText(kv.value),
      Number(kv.mod_revision),
    ]);
    const initial = !this.notifier.loaded;
    this.etcdRevision = revision;
    let changes = this.notifier.state.load(entries);
    // relative to the state before this read, as the listeners need them: a listener that acts
    // only on the keys it follows (the shard router on `shards/`) must see every one of them
    if (initial && this.notifier.state.rejected.length > 0)
      changes = foldChanges(changes, await this.restoreLastGood(entries, revision));
    this.markConnected();
    this.logChanges(changes, revision, initial ? 'config loaded' : 'config re-read');
    this.notifier.publish(changes, { initial: true });

    const watcher = await this.client
      .watch()
      .prefix(this.prefix)
      .startRevision(String(revision + 1))
      .create();
    if (this.closed) {
      await watcher.cancel();
      return;
    }
    this.watcher = watcher;
    watcher.on('data', (r: IWatchResponse) => this.onWatchData(r));
    watcher.on('disconnected', (error: unknown) => this.markDisconnected(error));
    watcher.on('connected', () => this.markConnected());
    watcher.on('error', (error: unknown) => {
      // A cancelled watch (typically: its resume revision was compacted) cannot resume; start over.
      this.logger.warn(
        { err: watchCancelReason(error), lastSeenRevision: this.etcdRevision },
        'etcd watch cancelled; re-reading the prefix',
      );
      if (this.watcher === watcher && !this.closed) {
        this.watcher = undefined; // already cancelled by etcd: nothing to cancel
        void this.sync(this.retryInitialMs);
      }
    });
  }

  /**
   * The first read found rejected keys: load the plan of history-restore.ts (the last good values
   * a running instance would have kept), then apply the current values over it. Returns the
   * changes from the plain load of `entries` to that state (none without a plan).
   */
  private async restoreLastGood(entries: Entry[], revision: number) {
    const state = this.notifier.state;
    const plan = await planHistoryRestore(
      entries,
      etcdVersionReader(this.client, this.prefix),
      { dbHosts: this.dbHosts, processEnv: this.processEnv },
      revision,
      etcdPutsReader(this.client, this.prefix),
    );
    if (!plan) return [];
    const changes = applyRestorePlan(state, plan);
    for (const [key, revision] of plan.restored)
      this.logger.warn(
        { key, restoredFromRevision: revision, reason: state.rejected.find((r) => r.key === key)?.reason },
        'config value rejected at start; its last good value from etcd history stays in force',
      );
    return changes;
  }

  private onWatchData(res: IWatchResponse): void {
    const revision = Number(res.header.revision);
    this.etcdRevision = revision;
    // one response's events at once: the snapshot is derived once for all of them
    const all = this.notifier.state.apply(
      res.events.map((event): RawEvent => {
        const key = this.relative(event.kv);
        return event.type === 'Delete'
          ? { type: 'delete', key, revision: Number(event.kv.mod_revision) || revision }
          : {
              type: 'put',
              key,
              value: configValueText(event.kv.value),
              modRevision: Number(event.kv.mod_revision),
            };
      }),
    );
    this.logChanges(all, revision, 'config changed');
    for (const r of this.notifier.state.rejected) {
      if (res.events.some((e) => this.relative(e.kv) === r.key)) {
        // not the value: a rejected one may hold what does not belong in etcd (a shard's
        // `password`, refused as an unknown field: a review); the reason cut as a value is, since
        // it may quote a name of any length
        this.logger.warn({ key: r.key, reason: loggedValue(r.reason), revision }, 'config value rejected');
      }
    }
    this.notifier.publish(all);
  }

  /**
   * One info line per key changed. Instance registrations change with every instance start: at
   * debug. A whole read of the prefix (at start, after a compaction) logs the tenant directory
   * as one count, its entries at debug: thousands of tenants would bury the settings' lines.
   */
  private logChanges(changes: { key: string; old?: string; new?: string }[], revision: number, msg: string) {
    const wholeRead = msg !== 'config changed';
    let entries = 0;
    for (const c of changes) {
      const directory =
        wholeRead &&
        (c.key.startsWith('tenants/') ||
          c.key.startsWith('moving/') ||
          c.key.startsWith(TENANT_CACHE_EPOCH_PREFIX));
      if (directory) entries++;
      const fields = { key: c.key, old: loggedValue(c.old), new: loggedValue(c.new), revision };
      // moved by every write that could not reach Redis (about twice a second in a Redis outage,
      // logged by every process: over 150 lines in 20 s, an outside check): one line per 10 s
      // at info, with how many went unlogged since the last (`repeatsSinceLast`), each at debug
      if (isCacheEpochKey(c.key) && !wholeRead) {
        this.logger.debug(fields, msg);
        (c.key === CACHE_EPOCH_KEY ? this.epochLines : this.tenantEpochLines).warn(fields, msg);
        continue;
      }
      const level = c.key.startsWith('instances/') || directory ? 'debug' : 'info';
      this.logger[level](fields, msg);
    }
    if (entries > 0)
      this.logger.info(
        { entries, revision },
        `${msg}: tenant directory (tenants/, moving/, runtime/tenant_cache_epoch/; each at debug)`,
      );
  }

  /**
   * Logged at once when the connection is lost, then at most every 30 s while etcd stays away
   * (the watch's reconnects fail every few hundred ms, alternating between two messages).
   */
  private markDisconnected(error: unknown): void {
    const refused = etcdAuthRefusal(error);
    const message = refused ?? (error instanceof Error ? error.message : String(error));
    this.disconnectWarnings.warn(
      { err: error instanceof Error ? error.message : String(error), loaded: this.notifier.loaded },
      `${refused ?? 'etcd unreachable'}; serving last good config`,
    );
    // the outage's start, not its latest retry; before the first connection there is none
    if (this.notifier.connected) this.notifier.disconnectedSince = new Date().toISOString();
    this.notifier.connected = false;
    // etcd3's own breaker (cockatiel's BrokenCircuitError) refusing the next retry says nothing
    // of etcd: the error behind it stays (it alternated with the watch's error every 0.5 s, an
    // outside check)
    const ownBreaker = (error as { isBrokenCircuitError?: unknown } | null)?.isBrokenCircuitError === true;
    if (!(ownBreaker && this.notifier.lastError)) this.notifier.lastError = message;
    if (!this.closed) this.startNudging();
  }

  /**
   * While etcd is unreachable, a read with a deadline of NUDGE_DEADLINE_MS every NUDGE_MS. Its
   * failure makes etcd3 close the host's gRPC clients (`resetAllServices`, on any recoverable
   * error), the watch's with them, so the watch reconnects on a new connection. Without it, a
   * path that drops packets (a partition, a blackholed port: no reset) left gRPC's connection
   * attempt waiting on the kernel's SYN retransmissions, 1, 2, 4, 8 s apart, and a change put
   * right after the path healed applied 3.1–5.4 s later (an outside check; a plain watch here: 8 s
   * after a 15 s iptables blackhole), past the contract's 2 s; with it, 0 and 0.4 s after 15 and
   * 20 s blackholes (`test/etcd-blackhole.test.ts` holds it to 2 s through a proxy that goes dark).
   * The cost while etcd is down: one refused read per NUDGE_MS per process.
   */
  private startNudging(): void {
    if (this.nudger) return;
    this.nudger = setInterval(() => {
      this.client
        .get(`${this.prefix}${BARRIER_KEY}`)
        // gRPC takes a deadline as a wall time and turns it into a timeout at once (grpc-js
        // getRelativeTimeout): a step of the clock between the two lines is all it can see
        .options({ deadline: Date.now() + NUDGE_DEADLINE_MS })
        .exec()
        .catch(() => {});
    }, NUDGE_MS);
    this.nudger.unref();
  }

  private stopNudging(): void {
    clearInterval(this.nudger);
    this.nudger = undefined;
  }

  /** a read or the watch reached etcd: logs the end of an outage it warned about */
  private markConnected(): void {
    const warned = this.disconnectWarnings.warned;
    const unlogged = this.disconnectWarnings.reset();
    if (warned) this.logger.info({ unloggedWarnings: unlogged }, 'etcd reachable again');
    this.notifier.connected = true;
    this.stopNudging();
    this.notifier.disconnectedSince = undefined;
    this.notifier.lastError = undefined;
  }

  private relative(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(this.prefix.length);
  }
}

/**
 * Why etcd cancelled a watch, for the log: etcd3 words it "Watcher canceled: <etcd's reason>",
 * and etcd 3.4 gives no reason for the most common cause, a resume revision compacted away (an
 * outside check's log read `Error: Watcher canceled: ` and nothing more).
 */
export function watchCancelReason(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return /^Watcher canceled:\s*$/.test(text)
    ? 'etcd gave no reason (it gives none when the revision the watch resumes from was compacted)'
    : text;
}
