/**
 * LoginThrottle in process memory, for unit tests: the rules of login-throttle.ts for one
 * process only (every instance would count on its own). Expired windows are dropped when their
 * account is next seen.
 */
import {
  LOGIN_THROTTLE_POLICY,
  type LoginAccount,
  type LoginAdmission,
  type LoginThrottle,
  type LoginThrottlePolicy,
} from './login-throttle.js';

interface Window {
  /** attempts counted (failed, or still in flight) */
  count: number;
  endsAt: number;
}

export class MemoryLoginThrottle implements LoginThrottle {
  private readonly windows = new Map<string, Window>();
  private readonly policy: LoginThrottlePolicy;
  private readonly now: () => number;

  constructor({
    policy = LOGIN_THROTTLE_POLICY,
    now = Date.now,
  }: { policy?: LoginThrottlePolicy; now?: () => number } = {}) {
    this.policy = policy;
    this.now = now;
  }

  async admit(account: LoginAccount): Promise<LoginAdmission> {
    const key = `${account.tenantId}\u0000${account.email}`;
    const now = this.now();
    let window = this.windows.get(key);
    if (window && window.endsAt <= now) {
      this.windows.delete(key);
      window = undefined;
    }
    if (window && window.count >= this.policy.maxFailures) {
      return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil((window.endsAt - now) / 1000)) };
    }
    if (!window) {
      window = { count: 0, endsAt: now + this.policy.windowMs };
      this.windows.set(key, window);
    }
    window.count++;
    const counted = window;
    return {
      admitted: true,
      attempt: {
        settle: async (outcome) => {
          // only the window this attempt was counted in: a newer one owes it nothing
          if (this.windows.get(key) !== counted) return;
          if (outcome === 'succeeded') this.windows.delete(key);
          else if (outcome === 'undecided' && --counted.count <= 0) this.windows.delete(key);
        },
      },
    };
  }

  /** the attempts counted for an account in its current window (tests) */
  counted(account: LoginAccount): number {
    const window = this.windows.get(`${account.tenantId}\u0000${account.email}`);
    return window && window.endsAt > this.now() ? window.count : 0;
  }

  async close(): Promise<void> {
    this.windows.clear();
  }
}
