/**
 * Retiring every cached entry at once, for the writes whose invalidation Redis refused.
 *
 * A version raise that cannot reach Redis is kept in the writer's memory (pending-raises.ts) and
 * lands once Redis answers that instance again. Until then the entries it should retire are still
 * in Redis, and another instance that reaches Redis first serves them to readers without a
 * consistency token; if the writer dies first, they are served until they expire. So the writer
 * also moves the cache epoch (`runtime/cache_epoch` in etcd, schema.ts): every instance follows it
 * within milliseconds through its config watch, and no entry filled under another epoch is served
 * (read-cache.ts). The price is a cold cache after an outage in which something was written.
 *
 * Contract of `retire()`: resolves once a move of the epoch that STARTED after the call has been
 * written (an entry filled before the caller's write committed then carries an older epoch), or
 * has failed; never rejects. Calls while a move is in flight share the one move that follows it,
 * and moves start at least `minIntervalMs` apart, so etcd takes at most 1000 / minIntervalMs
 * writes a second from one instance (read-cache.ts also skips a move within 0.5 s of the last
 * one: 4.6 moves a second with 8 writers in a Redis outage, against 117 with a move per write).
 *
 * Failure mode: etcd unreachable too — the move fails (`onError`, after `deadlineMs`), and the
 * entries stay readable for readers without a token until the raise lands or they expire
 * (`cache/ttl_seconds`), as before this existed. For `quietMs` after a failed move, or until a
 * move succeeds again, callers do not wait: a move is tried in the background (one at a time) and
 * `retire()` resolves at once, so a combined Redis and etcd outage costs one write the deadline,
 * not every write.
 */
import { randomInt } from 'node:crypto';
import { withDeadline } from '../resilience/with-deadline.js';

/** writes a new value of the epoch; rejects when it could not */
export type EpochWrite = (value: number) => Promise<void>;

/**
 * a fresh epoch: the time in µs plus a random part, so two instances never write the same one.
 * Wall clock on purpose: the value is written to etcd, and every instance reads it as the time of
 * the move (read-cache.ts `epochSince`, against its own wall clock)
 */
export function nextEpoch(nowMs = Date.now()): number {
  return nowMs * 1000 + randomInt(1000);
}

export interface RetirerOptions {
  minIntervalMs?: number;
  /** a move that has not been written by then counts as failed (it may still land) */
  deadlineMs?: number;
  quietMs?: number;
  /** the clock of the intervals above: monotonic (`performance.now`) unless a test gives one */
  now?: () => number;
}

export class CacheEpochRetirer {
  private running: Promise<void> | undefined;
  private queued: Promise<void> | undefined;
  private lastStart = Number.NEGATIVE_INFINITY;
  private failedAt = Number.NEGATIVE_INFINITY;
  private readonly minIntervalMs: number;
  private readonly deadlineMs: number;
  private readonly quietMs: number;
  private readonly now: () => number;

  constructor(
    private readonly write: EpochWrite,
    private readonly onError: (error: unknown) => void,
    {
      minIntervalMs = 100,
      deadlineMs = 1000,
      quietMs = 5000,
      now = () => performance.now(),
    }: RetirerOptions = {},
  ) {
    this.minIntervalMs = minIntervalMs;
    this.deadlineMs = deadlineMs;
    this.quietMs = quietMs;
    this.now = now;
  }

  retire(): Promise<void> {
    if (this.now() - this.failedAt < this.quietMs) {
      if (!this.running) void this.start();
      return Promise.resolve();
    }
    if (!this.running) return this.start();
    this.queued ??= this.running.then(() => {
      this.queued = undefined;
      return this.start();
    });
    return this.queued;
  }

  private start(): Promise<void> {
    const run = this.spaced()
      .then(() =>
        withDeadline(this.write(nextEpoch()), this.deadlineMs, `not written within ${this.deadlineMs} ms`),
      )
      .then(() => {
        this.failedAt = Number.NEGATIVE_INFINITY; // etcd takes moves again: callers wait for them
      })
      .catch((error: unknown) => {
        this.failedAt = this.now();
        this.onError(error);
      })
      .finally(() => {
        if (this.running === run) this.running = undefined;
      });
    this.running = run;
    return run;
  }

  /** resolves when `minIntervalMs` have passed since the last move started, and marks this start */
  private async spaced(): Promise<void> {
    const wait = this.lastStart + this.minIntervalMs - this.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    this.lastStart = this.now();
  }
}
