/**
 * The version raises (cache invalidations, read-cache.ts) that Redis refused: kept in this
 * process, one merged position per version key, and pushed again until Redis takes them.
 *
 * Contract: a raise kept here reaches Redis on the next retry that gets through (every second
 * through the `redis` breaker, at once when the breaker's trials closed it: `retryNow`), or at
 * shutdown (`flush`). At most `max` keys are kept; beyond that a raise is dropped and the entry
 * it would have retired stays readable by readers without a consistency token until it expires
 * (`cache/ttl_seconds`). A reader with the write's token never gets such an entry: an entry
 * older than a token misses.
 *
 * Failure mode: the raises live only in this process; an instance killed (SIGKILL) while it
 * holds some loses them, with the same TTL bound on what readers without a token may see.
 */
import type { ReplicationPosition } from '../domain/data-access.js';
import { withDeadline } from '../resilience/with-deadline.js';
import { mergePositions } from './position-merge.js';

type Flavour = ReplicationPosition['flavour'];

/** sends one raise; rejects when Redis (or its breaker) refused it */
export type RaiseFn = (key: string, flavour: Flavour, position: string) => Promise<unknown>;

export class PendingRaises {
  private readonly pending = new Map<string, { flavour: Flavour; position: string }>();
  private retryTimer: ReturnType<typeof setInterval> | undefined;

  /**
   * `viaBreaker` is used by the background retries; `direct` at shutdown, when the breaker may
   * still be open from the outage and no other call is left to be protected.
   */
  constructor(
    private readonly viaBreaker: RaiseFn,
    private readonly direct: RaiseFn,
    private readonly max = 10_000,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** keeps `position` for `key` (merged with a raise already kept for it) and starts retrying */
  keep(key: string, position: ReplicationPosition): void {
    if (this.pending.size >= this.max && !this.pending.has(key)) return;
    const earlier = this.pending.get(key)?.position;
    this.pending.set(key, {
      flavour: position.flavour,
      position: mergePositions(position.flavour, earlier, position.gtid),
    });
    if (!this.retryTimer) {
      this.retryTimer = setInterval(() => void this.retryNow(), 1000);
      this.retryTimer.unref?.();
    }
  }

  /** forgets the raises kept for keys that `which` picks (their positions no longer hold) */
  drop(which: (key: string) => boolean): void {
    for (const key of [...this.pending.keys()]) if (which(key)) this.pending.delete(key);
  }

  /** one pass over what is kept, stopping at the first refusal; never throws */
  async retryNow(): Promise<void> {
    for (const key of [...this.pending.keys()]) {
      // as kept now: dropped meanwhile (`drop`: its position no longer holds), it is not sent
      const kept = this.pending.get(key);
      if (!kept) continue;
      const { flavour, position } = kept;
      try {
        await this.viaBreaker(key, flavour, position);
        this.dropIfSame(key, position);
      } catch {
        return; // still down; try again on the next tick
      }
    }
    if (this.pending.size === 0) this.stop();
  }

  /**
   * At shutdown, once no request is left: tries for up to `withinMs` to push what is kept,
   * bypassing the breaker. Answers how many raises are left (lost with the process).
   */
  async flush(withinMs: number): Promise<number> {
    const deadline = performance.now() + withinMs;
    while (this.pending.size > 0) {
      const left = deadline - performance.now();
      if (left <= 0) break;
      const [key, { flavour, position }] = this.pending.entries().next().value!;
      try {
        await withDeadline(this.direct(key, flavour, position), left, 'timed out');
        this.dropIfSame(key, position);
      } catch {
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(0, deadline - performance.now()))));
      }
    }
    return this.pending.size;
  }

  stop(): void {
    clearInterval(this.retryTimer);
    this.retryTimer = undefined;
  }

  /** a raise kept for the key while this one was in flight is newer: it stays */
  private dropIfSame(key: string, position: string): void {
    if (this.pending.get(key)?.position === position) this.pending.delete(key);
  }
}
