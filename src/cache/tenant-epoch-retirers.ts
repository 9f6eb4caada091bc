/**
 * One CacheEpochRetirer per tenant, for the moves of a tenant's own cache epoch
 * (`runtime/tenant_cache_epoch/<id>`, schema.ts) after its writes of unknown outcome: one
 * tenant's uncertain writes then retire its entries only (before, each moved the global epoch:
 * an outside check saw another tenant's hit rate fall from 65 % to 24–27 % while one tenant's
 * writes kept timing out on its own row locks).
 *
 * Contract of `retire(tenantId)`: as CacheEpochRetirer.retire for that tenant's key, or
 * `undefined` when `maxTenantsPerSecond` other tenants have had a move asked for at this instance
 * in the last second: the caller then moves the global epoch, which retires every tenant's
 * entries at once, so etcd takes a bounded number of writes however many tenants have uncertain
 * writes (a hung master's wave of timeouts spans every tenant on it). A tenant counts once per
 * second however many of its writes ask (they share its moves: a review saw 21 calls of one
 * tenant within an etcd round trip move the global epoch when each call counted).
 *
 * Failure mode: etcd not taking a move. All tenants' moves go to the one etcd, so after a failed
 * one no caller waits for a move (of any tenant) for `quietMs`, or until one is written again:
 * it is tried in the background and `retire` resolves at once (as CacheEpochRetirer does for one
 * key; per tenant, every tenant's first write during an etcd outage waited `deadlineMs`).
 *
 * A tenant's retirer is dropped once idle for `idleMs`, so the map holds only tenants with
 * recent uncertain writes.
 */
import { CacheEpochRetirer, type EpochWrite, type RetirerOptions } from './cache-epoch.js';

export interface TenantEpochRetirersOptions extends RetirerOptions {
  maxTenantsPerSecond?: number;
  idleMs?: number;
}

export class TenantEpochRetirers {
  private readonly retirers = new Map<string, { retirer: CacheEpochRetirer; usedAt: number }>();
  /** tenants counted in the last second, with when (ms), oldest first (a Map keeps insertion order) */
  private readonly counted = new Map<string, number>();
  private failedAt = Number.NEGATIVE_INFINITY;
  private readonly maxTenantsPerSecond: number;
  private readonly idleMs: number;
  private readonly quietMs: number;
  private readonly now: () => number;

  constructor(
    private readonly writeFor: (tenantId: string) => EpochWrite,
    private readonly onError: (error: unknown, tenantId: string) => void,
    private readonly options: TenantEpochRetirersOptions = {},
  ) {
    this.maxTenantsPerSecond = options.maxTenantsPerSecond ?? 20;
    this.idleMs = options.idleMs ?? 60_000;
    this.quietMs = options.quietMs ?? 5000;
    this.now = options.now ?? (() => performance.now());
  }

  retire(tenantId: string): Promise<void> | undefined {
    const now = this.now();
    for (const [id, at] of this.counted) {
      if (now - at < 1000) break;
      this.counted.delete(id);
    }
    if (!this.counted.has(tenantId)) {
      if (this.counted.size >= this.maxTenantsPerSecond) return undefined;
      this.counted.set(tenantId, now);
    }
    this.prune(now);
    let held = this.retirers.get(tenantId);
    if (!held) {
      const write = this.writeFor(tenantId);
      const retirer = new CacheEpochRetirer(
        async (value) => {
          await write(value);
          this.failedAt = Number.NEGATIVE_INFINITY; // etcd takes moves again: callers wait for them
        },
        (error) => {
          this.failedAt = this.now();
          this.onError(error, tenantId);
        },
        this.options,
      );
      held = { retirer, usedAt: now };
      this.retirers.set(tenantId, held);
    }
    held.usedAt = now;
    const move = held.retirer.retire();
    return now - this.failedAt < this.quietMs ? Promise.resolve() : move;
  }

  /** how many tenants' retirers are held (for tests) */
  get size(): number {
    return this.retirers.size;
  }

  private prune(now: number): void {
    for (const [id, held] of this.retirers) if (now - held.usedAt >= this.idleMs) this.retirers.delete(id);
  }
}
