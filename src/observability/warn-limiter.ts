/**
 * At most one warning per `everyMs` for one condition that repeats (a dependency down, retried
 * every second): the first is logged at once, later ones only once `everyMs` has passed since
 * the last logged one, each with `repeatsSinceLast` — how many it stands for. `reset()` (the
 * condition ended) makes the next warning log at once. With `everyMs` 60 s, a dependency down
 * for an hour costs 60 lines, not the 3,600 or more of a warning per retry. `level` 'error' logs
 * the same way at error level (a condition that is a fault of the setup, not of a dependency),
 * 'info' at info level (an event that is routine one at a time but comes in bursts).
 *
 * `everyMs` is counted on the monotonic clock (`performance.now`, unless a test gives `now`): on
 * `Date.now`, a wall clock stepped back (NTP, `date -s`) silenced a repeating warning for as long
 * as the step (an outside check: one line, then nothing for 3.5 min, `repeatsSinceLast: 372`).
 */
import type { Logger } from './logger.js';

export class WarnLimiter {
  private lastAt = Number.NEGATIVE_INFINITY;
  private repeats = 0;

  constructor(
    private readonly logger: Logger,
    private readonly everyMs: number,
    private readonly now: () => number = () => performance.now(),
    private readonly level: 'info' | 'warn' | 'error' = 'warn',
  ) {}

  warn(fields: Record<string, unknown>, msg: string): void {
    const now = this.now();
    if (now - this.lastAt < this.everyMs) {
      this.repeats++;
      return;
    }
    this.logger[this.level]({ ...fields, repeatsSinceLast: this.repeats }, msg);
    this.lastAt = now;
    this.repeats = 0;
  }

  /** true once a warning was logged since the last reset: the condition is on */
  get warned(): boolean {
    return this.lastAt !== Number.NEGATIVE_INFINITY;
  }

  /** the condition ended: the next warning is logged at once; answers how many went unlogged */
  reset(): number {
    const unlogged = this.repeats;
    this.lastAt = Number.NEGATIVE_INFINITY;
    this.repeats = 0;
    return unlogged;
  }
}
