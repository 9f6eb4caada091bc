/** In-memory CacheStore with TTLs, for unit tests and the embedded mode. */
import { ABSENT_VERSION_MARK, type CacheStore, type VersionedFill } from './interface.js';
import { MemoryKeyTracking } from './memory-key-tracking.js';
import { mergePositions } from './position-merge.js';

export class MemoryCacheStore implements CacheStore {
  private readonly data = new Map<string, { value: string; expiresAt: number }>();
  /** the last absent-version mark made (µs), so two in one millisecond differ */
  private lastMark = 0;
  /** number of calls, so tests can assert on traffic */
  calls = 0;
  /** when set, every call throws it (simulates a dead store) */
  failWith: Error | undefined;
  /** when true, every call waits until it is false again (simulates a store SIGSTOPped) */
  hangs = false;
  /** announces every change (for a near cache) */
  readonly tracking = new MemoryKeyTracking();

  /**
   * `now`: the clock of the TTLs (as Redis's own, a duration that no step of a wall clock
   * changes): monotonic unless a test gives one. A fresh absent-version mark reads the wall
   * clock, as the Redis script's `TIME` does.
   */
  constructor(private readonly now: () => number = () => performance.now()) {}

  private async touch(): Promise<void> {
    this.calls++;
    while (this.hangs) await new Promise((r) => setTimeout(r, 5));
    if (this.failWith) throw this.failWith;
  }

  private read(key: string): string | undefined {
    const e = this.data.get(key);
    if (!e) return undefined;
    if (e.expiresAt <= this.now()) {
      this.data.delete(key);
      return undefined;
    }
    return e.value;
  }

  async get(key: string) {
    await this.touch();
    return this.read(key);
  }

  async getVersioned(counterKey: string, prefix: string, suffix: string) {
    await this.touch();
    const version = this.read(counterKey);
    if (version === undefined) return { version: '', value: undefined };
    return { version, value: this.read(`${prefix}${version}${suffix}`) };
  }

  /** as the Redis script (redis.ts FILL_VERSIONED) */
  async fillVersioned({
    versionKey,
    version,
    prefix,
    suffix,
    value,
    ttlSeconds,
    markTtlSeconds,
  }: VersionedFill) {
    await this.touch();
    let current = this.read(versionKey);
    const now = this.now();
    const markExpiry = now + markTtlSeconds * 1000;
    // what Redis announces: the entry key, and the version key when it was written
    const announced: string[] = [];
    if (version === '') {
      if (current !== undefined) return false;
      // a fresh mark from the clock, never a value the key held before
      const at = Math.max(Date.now() * 1000, this.lastMark + 1);
      this.lastMark = at;
      current = `${ABSENT_VERSION_MARK}${Math.floor(at / 1e6)}.${String(at % 1e6).padStart(6, '0')}`;
      this.data.set(versionKey, { value: current, expiresAt: markExpiry });
      announced.push(versionKey);
    } else if (current !== version) {
      return false;
    }
    const key = `${prefix}${current}${suffix}`;
    this.data.set(key, { value, expiresAt: now + ttlSeconds * 1000 });
    announced.push(key);
    const left = (this.data.get(versionKey)?.expiresAt ?? now) - now;
    if (version !== '' && current.startsWith(ABSENT_VERSION_MARK) && left < ttlSeconds * 1000) {
      this.data.set(versionKey, { value: current, expiresAt: markExpiry });
      announced.push(versionKey);
    }
    this.tracking.announce(announced);
    return true;
  }

  async set(key: string, value: string, ttlSeconds: number) {
    await this.touch();
    this.data.set(key, { value, expiresAt: this.now() + ttlSeconds * 1000 });
    this.tracking.announce([key]);
  }

  async del(keys: string[]) {
    await this.touch();
    for (const k of keys) this.data.delete(k);
    this.tracking.announce(keys);
  }

  async deleteMatching(pattern: string) {
    await this.touch();
    const glob = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    const keys = [...this.data.keys()].filter((k) => glob.test(k));
    for (const k of keys) this.data.delete(k);
    this.tracking.announce(keys);
    return keys.length;
  }

  async raisePositions(
    keys: readonly string[],
    flavour: 'mariadb' | 'mysql',
    position: string,
    ttlSeconds: number,
  ) {
    await this.touch();
    for (const key of keys) {
      const merged = mergePositions(flavour, this.read(key), position);
      this.data.set(key, { value: merged, expiresAt: this.now() + ttlSeconds * 1000 });
    }
    this.tracking.announce(keys);
  }

  async close() {}
}
