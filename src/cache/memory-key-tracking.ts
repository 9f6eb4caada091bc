/**
 * KeyTracking for MemoryCacheStore (unit tests, embedded mode): every change the store makes is
 * announced at once, to every listener (like Redis' broadcast mode: a superset of what was read).
 * `down()` / `up()` let tests play a lost connection.
 */
import type { KeyTracking } from './interface.js';

export class MemoryKeyTracking implements KeyTracking {
  epoch = 0;
  active = false;
  private connected = true;
  private readonly listeners: ((keys: readonly string[] | null) => void)[] = [];

  live(): boolean {
    return this.active && this.connected;
  }

  onInvalidate(listener: (keys: readonly string[] | null) => void): void {
    this.listeners.push(listener);
  }

  activate(on: boolean): void {
    if (on !== this.active) this.epoch++;
    this.active = on;
  }

  /** called by the store for each change; `null` = everything */
  announce(keys: readonly string[] | null): void {
    if (!this.live()) return;
    for (const l of this.listeners) l(keys);
  }

  down(): void {
    this.connected = false;
    this.epoch++;
  }

  up(): void {
    this.connected = true;
    this.epoch++;
  }

  close(): void {
    this.activate(false);
  }
}
