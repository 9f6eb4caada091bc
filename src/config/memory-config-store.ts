/**
 * In-memory config store for unit tests and the embedded mode: the same validation as the etcd
 * store (ConfigState), fed by `put`/`delete` calls instead of an etcd watch.
 */

import { ConfigNotifier } from './config-notifier.js';
import type { ConfigSnapshot } from './config-state.js';
import type { DbHostPolicy } from './db-hosts.js';
import type { ConfigListener, ConfigStatus, ConfigStore } from './interface.js';

export class MemoryConfigStore implements ConfigStore {
  private readonly notifier: ConfigNotifier;
  private revision = 0;

  /** `initial` is loaded at once, so the store is ready unless `loaded: false` is asked for. */
  constructor({
    initial = {},
    loaded = true,
    dbHosts,
  }: { initial?: Record<string, string>; loaded?: boolean; dbHosts?: DbHostPolicy } = {}) {
    this.notifier = new ConfigNotifier('memory', undefined, { dbHosts });
    if (loaded) this.load(initial);
  }

  load(entries: Record<string, string>): void {
    const rev = ++this.revision;
    const changes = this.notifier.state.load(
      Object.entries(entries).map(([k, v]): [string, string, number] => [k, v, rev]),
    );
    this.notifier.connected = true;
    this.notifier.publish(changes, { initial: true });
  }

  put(key: string, value: string): void {
    this.notifier.publish(this.notifier.state.put(key, value, ++this.revision));
  }

  delete(key: string): void {
    this.notifier.publish(this.notifier.state.delete(key, ++this.revision));
  }

  /** as an etcd store that lost (false) or found again (true) its etcd: the snapshot is kept */
  setConnected(connected: boolean): void {
    this.notifier.connected = connected;
  }

  current(): ConfigSnapshot {
    return this.notifier.state.snapshot;
  }

  status(): ConfigStatus {
    return this.notifier.status();
  }

  onChange(listener: ConfigListener): () => void {
    return this.notifier.subscribe(listener);
  }

  async close(): Promise<void> {}
}
