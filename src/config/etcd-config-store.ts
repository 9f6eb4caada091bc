/**
 * Live config from etcd (CONTRACT.md §4).
 *
 * Protocol: read the whole prefix at revision R, validate it (ConfigState), then watch the prefix
 * from R + 1 so no change between the read and the watch is missed. Failure modes:
 * - etcd unreachable at start: retry the read with capped exponential backoff; `status().loaded`
 *   stays false (so `/health/ready` answers 503) until a first read succeeds.
 * - etcd lost later: the last good snapshot stays in force; status reports `connected: false`
 *   and the error; etcd3 re-establishes the watch stream from the last revision it saw.
 * - watch cancelled (compaction of the revision it would resume from, or any server-side
 *   cancel): close it, re-read the whole prefix and re-watch from the new revision.
 * - a key invalid at the first read: a running instance keeps the last good value of a key that
 *   turns invalid, but a process that starts has none. So the first read looks for it in etcd's
 *   history (`lastGoodInHistory`): the key's earlier versions, newest first, back to its creation
 *   or the compacted revision, at most HISTORY_STEPS of them. The newest one that validates is put
 *   in force and the current value rejected "keeping last good value", as a running instance
 *   would have done; without one the key stays rejected and unset.
 */
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3';
import type { Logger } from '../observability/logger.js';
import { ConfigNotifier } from './config-notifier.js';
import type { ConfigSnapshot } from './config-state.js';
import type { ConfigListener, ConfigStatus, ConfigStore } from './interface.js';
import { parseConfigKey } from './schema.js';

/** how far back the first read looks for a rejected key's last good value, per key and in all */
const HISTORY_STEPS = 20;
const HISTORY_KEYS = 100;

export interface EtcdConfigStoreOptions {
  client: Etcd3;
  prefix: string;
  logger: Logger;
  /** first and maximum delay between read attempts while etcd is unreachable */
  retryInitialMs?: number;
  retryMaxMs?: number;
}

export class EtcdConfigStore implements ConfigStore {
  private readonly notifier: ConfigNotifier;
  private watcher: Watcher | undefined;
  private closed = false;
  private syncing: Promise<void> | undefined;
  /** last etcd header revision seen (read or watch) — includes instance registrations */
  private etcdRevision = 0;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly client: Etcd3;
  private readonly prefix: string;
  private readonly logger: Logger;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;

  constructor({ client, prefix, logger, retryInitialMs = 200, retryMaxMs = 5000 }: EtcdConfigStoreOptions) {
    this.client = client;
    this.prefix = prefix;
    this.logger = logger.child({ component: 'config' });
    this.retryInitialMs = retryInitialMs;
    this.retryMaxMs = retryMaxMs;
    this.notifier = new ConfigNotifier('etcd', (error) =>
      this.logger.error({ err: error }, 'config listener failed'),
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

  onChange(listener: ConfigListener): () => void {
    return this.notifier.subscribe(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
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
      kv.value.toString('utf8'),
      Number(kv.mod_revision),
    ]);
    const initial = !this.notifier.loaded;
    this.etcdRevision = revision;
    let changes = this.notifier.state.load(entries);
    if (initial && this.notifier.state.rejected.length > 0) changes = await this.restoreLastGood(entries);
    this.notifier.connected = true;
    this.notifier.lastError = undefined;
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
    watcher.on('connected', () => {
      if (!this.notifier.connected) this.logger.info({}, 'etcd reconnected; watch resumed');
      this.notifier.connected = true;
      this.notifier.lastError = undefined;
    });
    watcher.on('error', (error: unknown) => {
      // A cancelled watch (typically: its resume revision was compacted) cannot resume; start over.
      this.logger.warn({ err: String(error) }, 'etcd watch cancelled; re-reading the prefix');
      if (this.watcher === watcher && !this.closed) {
        this.watcher = undefined; // already cancelled by etcd: nothing to cancel
        void this.sync(this.retryInitialMs);
      }
    });
  }

  /**
   * The first read found rejected keys: load again with each one's last good value from etcd's
   * history, then apply the current value over it (rejected, the good one kept). Returns the
   * changes of that load; a history read that fails leaves the key as the plain load had it.
   */
  private async restoreLastGood(entries: [string, string, number][]) {
    const state = this.notifier.state;
    const rejected = new Set(state.rejected.map((r) => r.key));
    const restored = new Map<string, { value: string; mod: number }>();
    for (const [key, , mod] of entries) {
      if (!rejected.has(key) || key.startsWith('instances/') || restored.size >= HISTORY_KEYS) continue;
      const found = await this.lastGoodInHistory(key, mod);
      if (found) restored.set(key, found);
    }
    if (restored.size === 0) return state.load(entries);
    const changes = state.load(
      entries.map(([key, value, mod]): [string, string, number] => {
        const good = restored.get(key);
        return good ? [key, good.value, good.mod] : [key, value, mod];
      }),
    );
    for (const [key, value, mod] of entries) if (restored.has(key)) state.put(key, value, mod);
    for (const [key, { mod }] of restored)
      this.logger.warn(
        { key, restoredFromRevision: mod, reason: state.rejected.find((r) => r.key === key)?.reason },
        'config value rejected at start; its last good value from etcd history stays in force',
      );
    // the puts reject the current values and keep the restored ones: nothing more is in force
    return changes;
  }

  /** the newest earlier version of `key` that validates on its own; undefined if none is left */
  private async lastGoodInHistory(key: string, modRevision: number) {
    let before = modRevision - 1;
    for (let step = 0; step < HISTORY_STEPS && before > 0; step++) {
      let kv: IKeyValue | undefined;
      try {
        const res = await this.client.get(`${this.prefix}${key}`).revision(String(before)).exec();
        kv = res.kvs[0];
      } catch (error) {
        // typically: that revision was compacted away
        this.logger.debug({ key, revision: before, err: String(error) }, 'config history not readable');
        return undefined;
      }
      if (!kv) return undefined; // the key did not exist then
      const value = kv.value.toString('utf8');
      if (parseConfigKey(key, value).ok) return { value, mod: Number(kv.mod_revision) };
      before = Number(kv.mod_revision) - 1;
    }
    return undefined;
  }

  private onWatchData(res: IWatchResponse): void {
    const revision = Number(res.header.revision);
    this.etcdRevision = revision;
    const all = [];
    for (const event of res.events) {
      const key = this.relative(event.kv);
      const changes =
        event.type === 'Delete'
          ? this.notifier.state.delete(key, Number(event.kv.mod_revision) || revision)
          : this.notifier.state.put(key, event.kv.value.toString('utf8'), Number(event.kv.mod_revision));
      all.push(...changes);
    }
    this.logChanges(all, revision, 'config changed');
    for (const r of this.notifier.state.rejected) {
      if (res.events.some((e) => this.relative(e.kv) === r.key)) {
        this.logger.warn({ key: r.key, reason: r.reason, revision }, 'config value rejected');
      }
    }
    this.notifier.publish(all);
  }

  private logChanges(changes: { key: string; old?: string; new?: string }[], revision: number, msg: string) {
    for (const c of changes) {
      // instance registrations change with every instance start; keep them out of the info log
      const level = c.key.startsWith('instances/') ? 'debug' : 'info';
      this.logger[level]({ key: c.key, old: c.old, new: c.new, revision }, msg);
    }
  }

  private markDisconnected(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (this.notifier.connected || this.notifier.lastError !== message) {
      this.logger.warn(
        { err: message, loaded: this.notifier.loaded },
        'etcd unreachable; serving last good config',
      );
    }
    this.notifier.connected = false;
    this.notifier.lastError = message;
  }

  private relative(kv: IKeyValue): string {
    return kv.key.toString('utf8').slice(this.prefix.length);
  }
}
