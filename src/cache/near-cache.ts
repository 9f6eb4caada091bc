/**
 * An in-process copy of hot read-cache entries in front of the store, so a hit costs no round
 * trip to Redis. Off unless `cache/near_max_entries` > 0.
 *
 * What it holds: the value of *version keys* (read-cache.ts), learnt from the store and dropped
 * when the store's KeyTracking announces a change; and decoded entries by their full key, which
 * includes the version they were filled for, so an entry is never wrong for its key, only
 * unreachable once the version moves on. A lookup succeeds only when both are here.
 *
 * Coherence (the Redis client-side caching recipe): a version read from the store is kept only if
 * no announcement for that key arrived between sending the read and its reply (a ticket per read
 * in flight), and only within one tracking epoch. When tracking is not live, nothing is served and
 * everything is forgotten. So a token-less caller may get an entry whose version changed at most
 * the tracking's bound ago (normally the ~0.1 ms an announcement takes; up to the heartbeat
 * bound, 1 s, while Redis hangs) — never more; a caller with a consistency token still gets only
 * an entry that includes its position (checked by the read cache as for store entries). A write
 * made by this instance drops its versions here at once (`forget`).
 *
 * Bounded: at most `maxEntries` entries (least recently used out first) and 4× as many versions.
 * Entries are shared between requests: callers must not mutate them.
 */
import type { KeyTracking } from './interface.js';

export interface NearTicket {
  readonly key: string;
  readonly id: number;
  readonly epoch: number;
}

interface Held<E> {
  entry: E;
  /** on the monotonic clock (performance.now): see `put` */
  expiresAt: number;
  /** `uses` when this entry last moved to the young end */
  usedAt: number;
}

export class NearCache<E> {
  private readonly versions = new Map<string, string>();
  private readonly entries = new Map<string, Held<E>>();
  private readonly tickets = new Map<string, number>();
  private seq = 0;
  /** counts lookups that hit and puts: the clock of the LRU order */
  private uses = 0;
  private epoch = Number.NaN;
  private max = 0;

  constructor(private readonly tracking: KeyTracking) {
    tracking.onInvalidate((keys) => {
      if (keys === null) return this.clear();
      for (const k of keys) {
        this.versions.delete(k);
        this.tickets.delete(k);
      }
    });
  }

  get size(): number {
    return this.entries.size;
  }

  get maxEntries(): number {
    return this.max;
  }

  set maxEntries(n: number) {
    if (n === this.max) return;
    this.max = n;
    if (n === 0) this.clear();
    else this.trim();
  }

  /** Whether the near cache may be used now; forgets everything when tracking moved or is down. */
  private usable(): boolean {
    if (this.max === 0) return false;
    if (!this.tracking.live()) {
      if (this.versions.size > 0 || this.entries.size > 0 || this.tickets.size > 0) this.clear();
      this.epoch = Number.NaN;
      return false;
    }
    if (this.tracking.epoch !== this.epoch) {
      this.clear();
      this.epoch = this.tracking.epoch;
    }
    return true;
  }

  /** The version held for `versionKey` and the entry under it, if both are here and unexpired. */
  lookup(
    versionKey: string,
    entryKey: (version: string) => string,
  ): { version: string; entry: E } | undefined {
    if (!this.usable()) return undefined;
    const version = this.versions.get(versionKey);
    if (version === undefined) return undefined;
    const key = entryKey(version);
    const held = this.entries.get(key);
    if (!held) return undefined;
    if (held.expiresAt <= performance.now()) {
      this.entries.delete(key);
      return undefined;
    }
    // least recently used goes first: move this one to the young end, but only once it has aged
    // past half the capacity (a hot entry is not moved on every hit; the order stays LRU enough)
    if (++this.uses - held.usedAt > this.max / 2) {
      held.usedAt = this.uses;
      this.entries.delete(key);
      this.entries.set(key, held);
    }
    return { version, entry: held.entry };
  }

  /** Before reading `versionKey` from the store. */
  begin(versionKey: string): NearTicket | undefined {
    if (!this.usable()) return undefined;
    const id = ++this.seq;
    this.tickets.set(versionKey, id);
    if (this.tickets.size > 2 * this.max) this.tickets.delete(this.tickets.keys().next().value as string);
    return { key: versionKey, id, epoch: this.epoch };
  }

  /** After the store answered the ticket's read: keep the version unless it was announced meanwhile. */
  learn(ticket: NearTicket | undefined, version: string): void {
    if (!ticket || !this.usable() || ticket.epoch !== this.epoch) return;
    if (this.tickets.get(ticket.key) !== ticket.id) return;
    this.tickets.delete(ticket.key);
    this.versions.delete(ticket.key);
    this.versions.set(ticket.key, version);
    this.trim();
  }

  /** The read failed: no version to learn. */
  abandon(ticket: NearTicket | undefined): void {
    if (ticket && this.tickets.get(ticket.key) === ticket.id) this.tickets.delete(ticket.key);
  }

  /**
   * Hold an entry under its full key (which names its version) until `expiresAt` (ms, wall clock:
   * the entry's own expiry, written by whichever instance filled it). Its time left is read from
   * the wall clock once, here; from then on it runs down on the monotonic clock, so a step of the
   * wall clock does not hold an entry past its time (a step back) or drop every entry (ahead).
   */
  put(entryKey: string, entry: E, expiresAt: number): void {
    const left = expiresAt - Date.now();
    if (!this.usable() || left <= 0) return;
    this.entries.delete(entryKey);
    this.entries.set(entryKey, { entry, expiresAt: performance.now() + left, usedAt: ++this.uses });
    this.trim();
  }

  /** This instance changed these keys: drop their versions now, before the announcement comes. */
  forget(versionKeys: readonly string[]): void {
    for (const k of versionKeys) {
      this.versions.delete(k);
      this.tickets.delete(k);
    }
  }

  /**
   * Drop everything held under `prefix` (a tenant's namespace): the tenant moved to another
   * shard, and Redis' tracking may no longer announce changes of keys this instance read long ago.
   */
  forgetPrefix(prefix: string): void {
    for (const map of [this.versions, this.entries, this.tickets] as Map<string, unknown>[])
      for (const k of [...map.keys()]) if (k.startsWith(prefix)) map.delete(k);
  }

  clear(): void {
    this.versions.clear();
    this.entries.clear();
    this.tickets.clear();
  }

  private trim(): void {
    while (this.entries.size > this.max) this.entries.delete(this.entries.keys().next().value as string);
    // versions are a few bytes each: keep more of them than entries, oldest learnt out first
    while (this.versions.size > 4 * this.max)
      this.versions.delete(this.versions.keys().next().value as string);
  }
}
