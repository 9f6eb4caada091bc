/**
 * LoginThrottle in process memory, for unit tests: the rules of login-throttle.ts for one
 * process only (every instance would count on its own). Expired windows are dropped when their
 * account is next seen; stale attempts become failures then too.
 */
import {
  LOGIN_THROTTLE_POLICY,
  type LoginAccount,
  type LoginAdmission,
  type LoginThrottle,
  type LoginThrottlePolicy,
  REFUSED_IN_FLIGHT,
  refusedForFailures,
} from './login-throttle.js';

interface Window {
  failed: number;
  /** attempts admitted and not yet settled, by id → when admitted */
  inFlight: Map<number, number>;
  endsAt: number;
}

export class MemoryLoginThrottle implements LoginThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly policy: LoginThrottlePolicy;
  private readonly now: () => number;
  private nextAttempt = 0;

  constructor({
    policy = LOGIN_THROTTLE_POLICY,
    // windows are durations in this process: a monotonic clock (a wall-clock step back would
    // keep a window, and its refusals, open for the step's length)
    now = () => performance.now(),
  }: { policy?: LoginThrottlePolicy; now?: () => number } = {}) {
    this.policy = policy;
    this.now = now;
  }

  async admit(account: LoginAccount): Promise<LoginAdmission> {
    const key = `${account.tenantId}\u0000${account.email}`;
    const now = this.now();
    const window = this.current(key, now);
    if (window && window.failed >= this.policy.maxFailures) return refusedForFailures(window.endsAt - now);
    if (window && window.failed + window.inFlight.size >= this.policy.maxFailures) return REFUSED_IN_FLIGHT;
    const counted = window ?? { failed: 0, inFlight: new Map(), endsAt: now + this.policy.windowMs };
    this.windows.set(key, counted);
    const id = this.nextAttempt++;
    counted.inFlight.set(id, now);
    return {
      admitted: true,
      attempt: {
        settle: async (outcome) => {
          // only the window this attempt was counted in, and only while it is in flight there
          if (this.current(key, this.now()) !== counted || !counted.inFlight.delete(id)) return;
          if (outcome === 'failed') counted.failed++;
          else if (outcome === 'succeeded') counted.failed = 0;
          if (counted.failed === 0 && counted.inFlight.size === 0) this.windows.delete(key);
        },
      },
    };
  }

  /** the attempts counted for an account in its current window, failed or in flight (tests) */
  counted(account: LoginAccount): number {
    const window = this.current(`${account.tenantId}\u0000${account.email}`, this.now());
    return window ? window.failed + window.inFlight.size : 0;
  }

  async close(): Promise<void> {
    this.windows.clear();
  }

  /** the account's window at `now`, its stale attempts turned into failures; expired ones dropped */
  private current(key: string, now: number): Window | undefined {
    const window = this.windows.get(key);
    if (!window) return undefined;
    if (window.endsAt <= now) {
      this.windows.delete(key);
      return undefined;
    }
    for (const [id, at] of window.inFlight) {
      if (now - at < this.policy.staleAttemptMs) continue;
      window.inFlight.delete(id);
      window.failed++;
    }
    return window;
  }
}
