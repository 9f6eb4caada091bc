/**
 * One CacheEpochRetirer per tenant, for the moves of a tenant's own cache epoch
 * (`runtime/tenant_cache_epoch/<id>`, schema.ts) after its writes of unknown outcome: one
 * tenant's uncertain writes then retire its entries only (before, each moved the global epoch:
 * an outside check saw another tenant's hit rate fall from 65 % to 24–27 % while one tenant's
 * writes kept timing out on its own row locks).
 *
 * Contract of `retire(tenantId)`: as CacheEpochRetirer.retire for that tenant's key, or
 * `undefined` when this instance has started `maxTenantsPerSecond` tenant moves in the last
 * second already: the caller then moves the global epoch, which retires every tenant's entries
 * at once, so etcd takes a bounded number of writes however many tenants have uncertain writes
 * (a hung master's wave of timeouts spans every tenant on it).
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
  /** when the tenant moves of the last second started (ms), oldest first */
  private readonly starts: number[] = [];
  private readonly maxTenantsPerSecond: number;
  private readonly idleMs: number;
  private readonly now: () => number;

  constructor(
    private readonly writeFor: (tenantId: string) => EpochWrite,
    private readonly onError: (error: unknown, tenantId: string) => void,
    private readonly options: TenantEpochRetirersOptions = {},
  ) {
    this.maxTenantsPerSecond = options.maxTenantsPerSecond ?? 20;
    this.idleMs = options.idleMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  retire(tenantId: string): Promise<void> | undefined {
    const now = this.now();
    while (this.starts.length > 0 && now - (this.starts[0] as number) >= 1000) this.starts.shift();
    if (this.starts.length >= this.maxTenantsPerSecond) return undefined;
    this.starts.push(now);
    this.prune(now);
    let held = this.retirers.get(tenantId);
    if (!held) {
      held = {
        retirer: new CacheEpochRetirer(
          this.writeFor(tenantId),
          (e) => this.onError(e, tenantId),
          this.options,
        ),
        usedAt: now,
      };
      this.retirers.set(tenantId, held);
    }
    held.usedAt = now;
    return held.retirer.retire();
  }

  /** how many tenants' retirers are held (for tests) */
  get size(): number {
    return this.retirers.size;
  }

  private prune(now: number): void {
    for (const [id, held] of this.retirers) if (now - held.usedAt >= this.idleMs) this.retirers.delete(id);
  }
}
