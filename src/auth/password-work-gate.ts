/**
 * How many password checks and hashes (argon2id: tens of ms of a core each, on the libuv thread
 * pool) one process runs at once, and whose run next: the waiting ones take turns by tenant, one
 * per tenant in rotation, FIFO within a tenant. So one tenant's flood of registrations or logins
 * delays another tenant's login by a few hashes, not by the whole queue; and the process's
 * hashing takes at most `limit` cores (and threads of the pool), leaving the rest to its reads
 * and writes. Before, every hash went straight to the thread pool (4 threads per process, FIFO):
 * 80 registrations a second of one tenant kept both instances' pools, 8 threads of argon2, busy
 * on a 2-core machine, and every tenant's requests answered in 5–11 s (p50; an outside check).
 *
 * A work that has not had its turn within `maxWaitMs` is refused (PasswordWorkBusyError: 503
 * `server_busy`, Retry-After), having done nothing; so is one that finds `maxWaiting` works
 * waiting already, or `maxWaitingPerOwner` of its owner's (the queue is bounded: a review refused
 * 200,000 waiters in one go and blocked the event loop 10.8 s). Under a flood, the flooding tenant's excess is shed while the others'
 * occasional work still gets its turns. In-process only: each instance has its own gate.
 */
import { type PasswordWork, PasswordWorkBusyError } from '../domain/password-hasher.js';

/**
 * How long a password work waits for its turn at most: a few dozen hashes of other tenants at
 * the gate's pace; a client told 503 then retries after a second instead of holding a request.
 */
export const PASSWORD_WORK_MAX_WAIT_MS = 2000;
/** works waiting at once, at most, per process and per owner (tenant) */
export const PASSWORD_WORK_MAX_WAITING = 5000;
export const PASSWORD_WORK_MAX_WAITING_PER_OWNER = 1000;

interface Waiter {
  start(): void;
  /** refused meanwhile (its timeout): skipped when its turn comes */
  refused: boolean;
}

/** one owner's waiting works, FIFO; `head` instead of shift() (a refusal costs nothing to dequeue) */
interface Queue {
  items: Waiter[];
  head: number;
  /** its waiters not refused */
  waiting: number;
}

export class PasswordWorkGate implements PasswordWork {
  private running = 0;
  /** owners with waiting work, in the order of their turns (a Map keeps insertion order) */
  private readonly queues = new Map<string, Queue>();
  private waitingCount = 0;
  private refusedCount = 0;

  readonly maxWaitMs: number;
  readonly maxWaiting: number;
  readonly maxWaitingPerOwner: number;
  private readonly onRefused: () => void;

  constructor(
    /** works run at once (at least 1) */
    readonly limit: number,
    {
      maxWaitMs = PASSWORD_WORK_MAX_WAIT_MS,
      maxWaiting = PASSWORD_WORK_MAX_WAITING,
      maxWaitingPerOwner = PASSWORD_WORK_MAX_WAITING_PER_OWNER,
      onRefused = () => {},
    }: {
      /** the longest a work waits for its turn before it is refused */
      maxWaitMs?: number;
      /** works waiting at once, at most: one more is refused at once */
      maxWaiting?: number;
      /**
       * the same per owner: one tenant's flood fills its own, not the process's (a review: with
       * only the process's, another tenant's logins were refused at once during a flood)
       */
      maxWaitingPerOwner?: number;
      /** told of each refusal (a metric) */
      onRefused?: () => void;
    } = {},
  ) {
    if (!Number.isInteger(limit) || limit < 1)
      throw new RangeError(`limit must be a whole number ≥ 1, not ${limit}`);
    this.maxWaitMs = maxWaitMs;
    this.maxWaiting = maxWaiting;
    this.maxWaitingPerOwner = maxWaitingPerOwner;
    this.onRefused = onRefused;
  }

  /** works waiting for their turn now */
  get waiting(): number {
    return this.waitingCount;
  }

  /** works refused since the start (no turn in time, or too many waiting) */
  get refused(): number {
    return this.refusedCount;
  }

  /** runs `work` in `owner`'s turn; rejects with PasswordWorkBusyError, without running it, when none came */
  async run<T>(owner: string, work: () => Promise<T>): Promise<T> {
    await this.turn(owner);
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private turn(owner: string): Promise<void> {
    if (this.running < this.limit && this.waitingCount === 0) {
      this.running++;
      return Promise.resolve();
    }
    const queue = this.queues.get(owner);
    if (this.waitingCount >= this.maxWaiting || (queue?.waiting ?? 0) >= this.maxWaitingPerOwner) {
      this.refusedCount++;
      this.onRefused();
      return Promise.reject(new PasswordWorkBusyError(0));
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        refused: false,
        start: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        waiter.refused = true;
        own.waiting--;
        this.waitingCount--;
        this.refusedCount++;
        this.onRefused();
        reject(new PasswordWorkBusyError(this.maxWaitMs));
      }, this.maxWaitMs);
      timer.unref?.();
      const own = queue ?? { items: [], head: 0, waiting: 0 };
      if (!queue) this.queues.set(owner, own);
      own.items.push(waiter);
      own.waiting++;
      this.waitingCount++;
    });
  }

  /** a run ended: its place goes to the next waiter of the owner whose turn it is, else is freed */
  private release(): void {
    for (const [owner, queue] of this.queues) {
      this.queues.delete(owner);
      const next = this.nextOf(queue);
      if (!next) continue; // only refused ones were left: the owner leaves the rotation
      // its next work waits behind every other owner's
      if (queue.head < queue.items.length) this.queues.set(owner, queue);
      queue.waiting--;
      this.waitingCount--;
      next.start();
      return;
    }
    this.running--;
  }

  /** the first waiter of `queue` not refused, taken off it; undefined when none is left */
  private nextOf(queue: Queue): Waiter | undefined {
    while (queue.head < queue.items.length) {
      const w = queue.items[queue.head] as Waiter;
      queue.head++;
      if (!w.refused) {
        if (queue.head > 64 && queue.head * 2 > queue.items.length) {
          queue.items = queue.items.slice(queue.head);
          queue.head = 0;
        }
        return w;
      }
    }
    return undefined;
  }
}
