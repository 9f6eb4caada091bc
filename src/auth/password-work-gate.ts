/**
 * How many password checks and hashes (argon2id: tens of ms of a core each, on the libuv thread
 * pool) one process runs at once, and whose run next: the waiting ones take turns by tenant, one
 * per tenant in rotation, FIFO within a tenant. So one tenant's flood of registrations or logins
 * delays another tenant's login by a few hashes, not by the whole queue; and the process's
 * hashing takes at most `limit` cores, leaving the rest to its reads and writes. Before, every
 * hash went straight to the thread pool (4 threads, FIFO): 80 registrations a second of one
 * tenant kept 8 threads of argon2 busy on a 2-core machine, and every tenant's requests answered
 * in 5–11 s (p50; an outside check).
 *
 * A work that has not had its turn within `maxWaitMs` is refused (PasswordWorkBusyError: 503
 * `server_busy`, Retry-After), having done nothing: under a flood, the flooding tenant's excess
 * is shed while the others' occasional work still gets its turns. In-process only: each instance
 * has its own gate.
 */
import { PasswordWorkBusyError } from '../domain/password-hasher.js';

/**
 * How long a password work waits for its turn at most: a few dozen hashes of other tenants at
 * the gate's pace; a client told 503 then retries after a second instead of holding a request.
 */
export const PASSWORD_WORK_MAX_WAIT_MS = 2000;

interface Waiter {
  start(): void;
}

export class PasswordWorkGate {
  private running = 0;
  /** owners with waiting work, in the order of their turns (a Map keeps insertion order) */
  private readonly queues = new Map<string, Waiter[]>();
  private waitingCount = 0;
  private refusedCount = 0;

  constructor(
    /** works run at once (at least 1) */
    readonly limit: number,
    /** the longest a work waits for its turn before it is refused */
    readonly maxWaitMs: number,
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a whole number ≥ 1, not ${limit}`);
  }

  /** works waiting for their turn now */
  get waiting(): number {
    return this.waitingCount;
  }

  /** works refused since the start (no turn in time) */
  get refused(): number {
    return this.refusedCount;
  }

  /** runs `work` in `owner`'s turn; rejects with PasswordWorkBusyError, without running it, when none came in time */
  async run<T>(owner: string, work: () => Promise<T>): Promise<T> {
    await this.turn(owner);
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private turn(owner: string): Promise<void> {
    if (this.running < this.limit && this.queues.size === 0) {
      this.running++;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const queue = this.queues.get(owner);
        const at = queue?.indexOf(waiter) ?? -1;
        if (!queue || at < 0) return;
        queue.splice(at, 1);
        if (queue.length === 0) this.queues.delete(owner);
        this.waitingCount--;
        this.refusedCount++;
        reject(new PasswordWorkBusyError(this.maxWaitMs));
      }, this.maxWaitMs);
      timer.unref?.();
      const waiter: Waiter = {
        start: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const queue = this.queues.get(owner);
      if (queue) queue.push(waiter);
      else this.queues.set(owner, [waiter]);
      this.waitingCount++;
    });
  }

  /** a run ended: its place goes to the first waiter of the owner whose turn it is, else is freed */
  private release(): void {
    const first = this.queues.entries().next();
    if (first.done) {
      this.running--;
      return;
    }
    const [owner, queue] = first.value;
    const next = queue.shift() as Waiter;
    this.queues.delete(owner);
    // its next work waits behind every other owner's
    if (queue.length > 0) this.queues.set(owner, queue);
    this.waitingCount--;
    next.start();
  }
}
