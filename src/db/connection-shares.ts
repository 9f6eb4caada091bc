/**
 * How many of a node's pooled connections one tenant's calls may hold at once (`max`, less than
 * the pool's size), so that one tenant's writes waiting on their own row locks (held up to the
 * breaker's call timeout each) cannot take every connection of its shard's master from the
 * other tenants. Before (an outside check), 15 PATCHes a second at one locked book filled the
 * 10-connection pool of each instance, and other tenants' writes on the shard waited ~0.5 s
 * (p50), then answered `dependency_busy`.
 *
 * A tenant holding `max` waits for one of its own to come back (FIFO), never for another
 * tenant's; the wait is bounded as a wait for a busy pool is (mysql-node-set.ts: within the
 * call's budget, then `busy`, which the node's breaker does not count). A share taken is given
 * back exactly once, whatever happens to the call. In-process only: each instance has its own
 * pool and its own shares.
 */

/** why a wait for a share ended without one */
export class ShareWaitEnded extends Error {
  constructor(readonly why: 'timeout' | 'aborted') {
    super(why === 'timeout' ? 'no share freed in time' : 'the call was given up on');
    this.name = 'ShareWaitEnded';
  }
}

interface Waiter {
  grant(release: () => void): void;
}

interface Entry {
  held: number;
  waiters: Waiter[];
}

export class ConnectionShares {
  private readonly entries = new Map<string, Entry>();

  /** `max`: connections one key may hold at once (at least 1) */
  constructor(readonly max: number) {
    if (!Number.isInteger(max) || max < 1)
      throw new RangeError(`a share must be a whole number ≥ 1, not ${max}`);
  }

  /** connections `key` holds now */
  heldBy(key: string): number {
    return this.entries.get(key)?.held ?? 0;
  }

  /**
   * A share of `key`: at once when it holds fewer than `max`, else once one of its own is given
   * back, within `timeoutMs` (`wait` arms the timer and returns its cancel: the node's stall-aware
   * one) and until `signal` aborts; rejects with ShareWaitEnded then. Resolves with the function
   * that gives it back (idempotent).
   */
  take(
    key: string,
    wait: (onTimeout: () => void, ms: number) => () => void,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<() => void> {
    let entry = this.entries.get(key);
    if (!entry) {
      entry = { held: 0, waiters: [] };
      this.entries.set(key, entry);
    }
    if (entry.held < this.max && entry.waiters.length === 0) {
      entry.held++;
      return Promise.resolve(this.releaser(key, entry));
    }
    if (signal?.aborted) return Promise.reject(new ShareWaitEnded('aborted'));
    const queued = entry;
    return new Promise((resolve, reject) => {
      const end = (why: 'timeout' | 'aborted') => {
        const at = queued.waiters.indexOf(waiter);
        if (at < 0) return;
        queued.waiters.splice(at, 1);
        cleanup();
        reject(new ShareWaitEnded(why));
      };
      const onAbort = () => end('aborted');
      const cancelTimer = wait(() => end('timeout'), timeoutMs);
      const cleanup = () => {
        cancelTimer();
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        grant: (release) => {
          cleanup();
          resolve(release);
        },
      };
      queued.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  private releaser(key: string, entry: Entry): () => void {
    let given = false;
    return () => {
      if (given) return;
      given = true;
      // handed straight to the next waiter of the same key (the count stays), else given back
      const next = entry.waiters.shift();
      if (next) {
        next.grant(this.releaser(key, entry));
        return;
      }
      entry.held--;
      if (entry.held === 0 && this.entries.get(key) === entry) this.entries.delete(key);
    };
  }
}
