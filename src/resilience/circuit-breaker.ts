/**
 * A circuit breaker whose settings are read live on every event (CONTRACT.md §4 `breakers/…`):
 * a settings change applies to an existing breaker at once and never resets its state.
 *
 * - closed: calls pass; `failure_threshold` consecutive failures open it.
 * - open: calls fail at once with BreakerOpenError (Retry-After = time left); after
 *   `reset_timeout_ms` it turns half-open.
 * - half_open: at most `half_open_max_calls` probe calls run concurrently (others are refused);
 *   that many consecutive successes close it, any failure re-opens it.
 * - `executeOrTrial`: as `execute`, except that half-open it refuses the caller at once and lets
 *   background trial calls probe instead (one loop per breaker), for dependencies that can hang.
 * - every call is abandoned after `call_timeout_ms` and counts as a failure; a call that read
 *   `signal` of its argument sees it abort then. The AbortController is created only when a call
 *   reads `signal` (creating one per call was a measurable share of a cached read's CPU).
 *
 * Written by hand rather than with cockatiel 3.2's CircuitBreakerPolicy: that policy admits one
 * probe and closes on its first success (no N-success close, no N concurrent probes), and it
 * does not expose the time left while open, which Retry-After needs. Cockatiel's breaker and
 * backoff interfaces were checked for live settings (they can read settings per event) — the
 * half-open semantics were the blocker.
 */
import type { BreakerKind, BreakerSettings } from '../config/schema.js';
import { BreakerOpenError, CallTimeoutError } from './errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

export interface BreakerTransition {
  name: string;
  kind: BreakerKind;
  from: BreakerState;
  to: BreakerState;
  failures: number;
  reason: string;
}

export interface BreakerView {
  name: string;
  kind: BreakerKind;
  state: BreakerState;
  failures: number;
  settings: BreakerSettings;
  since: string;
}

export interface CircuitBreakerOptions {
  name: string;
  kind: BreakerKind;
  settings: () => BreakerSettings;
  onTransition?: (t: BreakerTransition) => void;
  now?: () => number;
}

export interface ExecuteOptions {
  /** errors for which this returns false are the caller's fault (e.g. a duplicate key) and count as success */
  isFailure?: (error: unknown) => boolean;
}

export interface TrialOptions extends ExecuteOptions {
  /** a cheap call without effect (a PING, a read of a key nobody writes); `isFailure` judges it too */
  trial: () => Promise<unknown>;
  /** called once each time a round of trials closed the breaker (the same function only once) */
  onClosedByTrials?: () => void;
}

export class CircuitBreaker {
  readonly name: string;
  readonly kind: BreakerKind;
  private readonly settings: () => BreakerSettings;
  private readonly onTransition: (t: BreakerTransition) => void;
  private readonly now: () => number;
  private current: BreakerState = 'closed';
  private failures = 0;
  private halfOpenSuccesses = 0;
  private probesInFlight = 0;
  private sinceMs: number;
  private openedAt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private trialsRunning = false;
  private readonly closedByTrials = new Set<() => void>();

  constructor({ name, kind, settings, onTransition = () => {}, now = Date.now }: CircuitBreakerOptions) {
    this.name = name;
    this.kind = kind;
    this.settings = settings;
    this.onTransition = onTransition;
    this.now = now;
    this.sinceMs = now();
  }

  get state(): BreakerState {
    this.maybeHalfOpen();
    return this.current;
  }

  /** ms until an open breaker turns half-open (0 when not open) */
  retryAfterMs(): number {
    if (this.state !== 'open') return 0;
    return Math.max(0, this.openedAt + this.settings().reset_timeout_ms - this.now());
  }

  view(): BreakerView {
    const state = this.state;
    return {
      name: this.name,
      kind: this.kind,
      state,
      failures: this.failures,
      settings: { ...this.settings() },
      since: new Date(this.sinceMs).toISOString(),
    };
  }

  /** Re-arm the open→half-open timer after `reset_timeout_ms` changed (state is kept). */
  settingsChanged(): void {
    if (this.current === 'open') this.armTimer();
  }

  /**
   * Throws the BreakerOpenError `execute` would throw right now, without calling anything: lets a
   * caller skip costly work (hashing a password) ahead of a call that would be refused.
   */
  refuseIfOpen(): void {
    const state = this.state;
    if (state === 'open') throw new BreakerOpenError(this.name, this.retryAfterMs());
    if (state === 'half_open' && this.probesInFlight >= this.settings().half_open_max_calls)
      throw new BreakerOpenError(this.name, 1000);
  }

  async execute<T>(
    fn: (call: { readonly signal: AbortSignal }) => Promise<T>,
    { isFailure = () => true }: ExecuteOptions = {},
  ): Promise<T> {
    const state = this.state;
    const s = this.settings();
    if (state === 'open') throw new BreakerOpenError(this.name, this.retryAfterMs());
    const probe = state === 'half_open';
    if (probe) {
      if (this.probesInFlight >= s.half_open_max_calls) throw new BreakerOpenError(this.name, 1000);
      this.probesInFlight++;
    }
    let controller: AbortController | undefined;
    const call = {
      get signal() {
        controller ??= new AbortController();
        return controller.signal;
      },
    };
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const error = new CallTimeoutError(this.name, s.call_timeout_ms);
        controller?.abort(error);
        reject(error);
      }, s.call_timeout_ms);
    });
    try {
      const result = await Promise.race([fn(call), timeout]);
      this.recordSuccess(probe);
      return result;
    } catch (error) {
      if (error instanceof CallTimeoutError || isFailure(error)) this.recordFailure(probe, error);
      else this.recordSuccess(probe);
      throw error;
    } finally {
      clearTimeout(timer);
      if (probe) this.probesInFlight--;
    }
  }

  /**
   * `execute`, except while half-open: then the caller is refused at once (BreakerOpenError) and
   * `trial` runs in the background, one call after the other, until the breaker closed or opened
   * again. A dependency that still hangs then costs no caller the call timeout each time the
   * reset timeout runs out. One trial loop per breaker, whichever caller started it (its `trial`
   * is used); every `onClosedByTrials` given meanwhile is called once when the loop closed it.
   */
  executeOrTrial<T>(
    fn: (call: { readonly signal: AbortSignal }) => Promise<T>,
    options: TrialOptions,
  ): Promise<T> {
    if (this.state !== 'half_open') return this.execute(fn, options);
    if (options.onClosedByTrials) this.closedByTrials.add(options.onClosedByTrials);
    if (!this.trialsRunning) void this.runTrials(options);
    return Promise.reject(new BreakerOpenError(this.name, this.retryAfterMs()));
  }

  private async runTrials({ trial, isFailure }: TrialOptions): Promise<void> {
    this.trialsRunning = true;
    try {
      while (this.state === 'half_open') await this.execute(() => trial(), { isFailure });
    } catch {
      // a failed trial opened the breaker again; the next caller after its reset timeout starts
      // the next round
    } finally {
      this.trialsRunning = false;
    }
    if (this.current !== 'closed') return;
    const callbacks = [...this.closedByTrials];
    this.closedByTrials.clear();
    for (const callback of callbacks) callback();
  }

  private recordSuccess(probe: boolean): void {
    if (this.current === 'closed') {
      this.failures = 0;
      return;
    }
    if (this.current === 'half_open' && probe) {
      this.halfOpenSuccesses++;
      if (this.halfOpenSuccesses >= this.settings().half_open_max_calls) {
        this.transition('closed', `${this.halfOpenSuccesses} successful probe(s)`);
      }
    }
  }

  private recordFailure(probe: boolean, error: unknown): void {
    const reason = error instanceof Error ? error.message : String(error);
    if (this.current === 'closed') {
      this.failures++;
      if (this.failures >= this.settings().failure_threshold) this.transition('open', reason);
    } else if (this.current === 'half_open' && probe) {
      this.failures++;
      this.transition('open', `probe failed: ${reason}`);
    }
  }

  private maybeHalfOpen(): void {
    if (this.current === 'open' && this.now() >= this.openedAt + this.settings().reset_timeout_ms) {
      this.transition('half_open', 'reset timeout elapsed');
    }
  }

  private armTimer(): void {
    clearTimeout(this.timer);
    const delay = Math.max(0, this.openedAt + this.settings().reset_timeout_ms - this.now());
    this.timer = setTimeout(() => this.maybeHalfOpen(), delay + 5);
    // never keep a process alive just to flip a breaker
    if (typeof this.timer === 'object' && 'unref' in this.timer) this.timer.unref();
  }

  private transition(to: BreakerState, reason: string): void {
    const from = this.current;
    if (from === to) return;
    this.current = to;
    this.sinceMs = this.now();
    this.halfOpenSuccesses = 0;
    if (to === 'open') {
      this.openedAt = this.sinceMs;
      this.armTimer();
    } else {
      clearTimeout(this.timer);
    }
    if (to === 'closed') this.failures = 0;
    this.onTransition({ name: this.name, kind: this.kind, from, to, failures: this.failures, reason });
  }
}
