/**
 * The last position each shard's master was seen at, kept in the cache store
 * (`sg:master-history:<shard>`), so that an instance finds out at start that a master's history
 * went back while no instance ran: all stopped for a restore from a backup, or for a `RESET
 * MASTER`, then started. The running instances see it on their own (ShardRouter's timeline); an
 * instance started afterwards has no timeline of before, and the version keys in Redis would keep
 * the shard's entries of before current (read-cache.ts `forgetShard`).
 *
 * `seen(shard, position)` takes every master sample of the router (`onMasterPosition`): the first
 * of each shard is compared with the stored mark — a stored position it does not contain calls
 * `wentBack` — and stored; later ones are stored at most every `everyMs`. So a mark is at most
 * that old: a history that went back within `everyMs` of the last instance stopping is not seen.
 * The Node entry gives it the store through the `redis` breaker (guarded-by-breaker.ts): while the
 * breaker is open no mark is read or written. A first comparison that fails (or is refused) is
 * tried again at the next sample; a store that fails is not retried. A mark unread (another flavour, an unparseable text) compares
 * with nothing.
 */
import { type GtidPosition, gtidContains, gtidText, parseGtid } from '../routing/gtid.js';
import type { CacheStore } from './interface.js';

export const masterHistoryKey = (shardId: string) => `sg:master-history:${shardId}`;

/** the counter of both ways a history that went back is found (here at start, the router's probes) */
export const MASTER_HISTORY_RESETS = {
  name: 'master_history_resets_total',
  help: "times a shard master's GTID position went back (RESET MASTER, a restore from a backup, a new master without the old one's last writes); the shard's cache was cleared",
  labelNames: ['shard'],
};
/** a mark outlives any stop of every instance worth remembering */
const MARK_TTL_SECONDS = 30 * 24 * 3600;

export type HistoryWentBack = (shardId: string, from: string, to: string) => void;

export class MasterHistoryMarks {
  private readonly checked = new Set<string>();
  private readonly storedAt = new Map<string, number>();

  constructor(
    private readonly store: Pick<CacheStore, 'get' | 'set'>,
    private readonly wentBack: HistoryWentBack,
    private readonly everyMs = 5000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  seen(shardId: string, position: GtidPosition): void {
    if (!this.checked.has(shardId)) {
      this.checked.add(shardId);
      void this.compare(shardId, position);
      return;
    }
    const at = this.now();
    if (at - (this.storedAt.get(shardId) ?? Number.NEGATIVE_INFINITY) < this.everyMs) return;
    this.storedAt.set(shardId, at);
    void this.mark(shardId, position).catch(() => {});
  }

  private async compare(shardId: string, position: GtidPosition): Promise<void> {
    let stored: string | undefined;
    try {
      stored = await this.store.get(masterHistoryKey(shardId));
    } catch {
      this.checked.delete(shardId);
      return;
    }
    const before = stored === undefined ? undefined : unmark(stored);
    if (before && !gtidContains(position, before))
      this.wentBack(shardId, gtidText(before), gtidText(position) || '(empty)');
    this.storedAt.set(shardId, this.now());
    await this.mark(shardId, position).catch(() => {});
  }

  private mark(shardId: string, position: GtidPosition): Promise<void> {
    return this.store.set(
      masterHistoryKey(shardId),
      JSON.stringify({ flavour: position.flavour, gtid: gtidText(position) }),
      MARK_TTL_SECONDS,
    );
  }
}

function unmark(stored: string): GtidPosition | undefined {
  try {
    const { flavour, gtid } = JSON.parse(stored) as { flavour?: unknown; gtid?: unknown };
    if ((flavour !== 'mariadb' && flavour !== 'mysql') || typeof gtid !== 'string') return undefined;
    return parseGtid(flavour, gtid);
  } catch {
    return undefined;
  }
}
