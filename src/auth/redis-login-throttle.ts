/**
 * LoginThrottle on Redis, shared by every API instance: one counter per account at
 * `sg:{<tenant>}:_login:<mac>` (the tenant's hash tag, like the read cache; `_` because a shard
 * id cannot hold one, so no shard's cache namespace `sg:{<tenant>}:<shard>:` covers the counters
 * and a tenant move that clears one leaves them alone), where `<mac>` is a
 * keyed MAC of tenant + normalised email (`keyMac`, derived from the server secret): no email is
 * stored in clear, and one cannot be confirmed by hashing a guess without the secret. Changing the
 * secret orphans the counters (they expire with their window).
 *
 * One round trip per decision: a script checks the count, counts the attempt and sets the
 * window's expiry on the first one (PEXPIRE; also on a counter found without one, so no counter
 * can outlive its window). A success is one more round trip (DEL); a failure none.
 *
 * Failure mode: FAIL OPEN. Every call goes through the `redis` breaker, shared with the read
 * cache. While Redis is down, slow or its breaker open, logins are admitted unthrottled and a
 * warning is logged at most once per `warnEveryMs` (1 min) per instance; the
 * `login_throttle_decisions_total{decision="unthrottled"}` counter shows every such admission.
 * A login then costs no more than the breaker allows: refused at once while it is open or
 * half-open (the half-open trials are this module's own background PINGs, never a login's
 * call — as in cache/read-cache.ts), at most `call_timeout_ms` (capped by the client's
 * `commandTimeoutMs`) while it is still closed. A settle that cannot reach Redis is dropped: a
 * success whose count is not cleared leaves it to expire with its window.
 */
import { Redis } from 'ioredis';
import { failFastRedisOptions } from '../cache/redis.js';
import type { DerivedMac } from '../crypto/derived-mac.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import {
  LOGIN_THROTTLE_POLICY,
  type LoginAccount,
  type LoginAdmission,
  type LoginThrottle,
  type LoginThrottlePolicy,
  UNCOUNTED_ATTEMPT,
} from './login-throttle.js';

/** KEYS[1] counter; ARGV max failures, window ms → {1 admitted | 0 throttled, ms left in the window} */
const ADMIT = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
local admitted = 0
if n < tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[1])
  admitted = 1
end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {admitted, ttl}
`;

/** an admitted attempt without a verdict: uncount it (the window's expiry is kept) */
const RELEASE = `
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n > 1 then return redis.call('DECR', KEYS[1]) end
if n == 1 then redis.call('DEL', KEYS[1]) end
return 0
`;

/** the breaker every Redis call of this instance passes (cache/read-cache.ts uses it too) */
const BREAKER = 'redis';
const MAC_HEX_CHARS = 32;

interface ThrottleCommands {
  loginAdmit(key: string, maxFailures: number, windowMs: number): Promise<[number, number]>;
  loginRelease(key: string): Promise<number>;
}

export interface RedisLoginThrottleOptions {
  url: string;
  breakers: BreakerRegistry;
  logger: Logger;
  metrics: Metrics;
  /** pseudonymises tenant + email into the key (e.g. nodeDerivedMac of the server secret) */
  keyMac: DerivedMac;
  policy?: LoginThrottlePolicy;
  /** hard ceiling per command; the breaker's call_timeout_ms normally abandons the call first */
  commandTimeoutMs?: number;
  /** at most one "throttle unavailable" warning per this many ms */
  warnEveryMs?: number;
  now?: () => number;
}

export class RedisLoginThrottle implements LoginThrottle {
  // A connection of its own, not the read cache's: that one has CLIENT TRACKING on for the near
  // cache, and Redis would then track every login key it touched and announce each change.
  private readonly redis: Redis;
  private readonly commands: ThrottleCommands;
  private readonly breakers: BreakerRegistry;
  private readonly logger: Logger;
  private readonly keyMac: DerivedMac;
  private readonly policy: LoginThrottlePolicy;
  private readonly decisions;
  private readonly warnings: WarnLimiter;

  constructor({
    url,
    breakers,
    logger,
    metrics,
    keyMac,
    policy = LOGIN_THROTTLE_POLICY,
    commandTimeoutMs = 1000,
    warnEveryMs = 60_000,
    now = Date.now,
  }: RedisLoginThrottleOptions) {
    this.redis = new Redis(url, failFastRedisOptions({ commandTimeoutMs }));
    // connection errors surface on the commands; do not crash on the emitter
    this.redis.on('error', () => {});
    this.redis.defineCommand('loginAdmit', { numberOfKeys: 1, lua: ADMIT });
    this.redis.defineCommand('loginRelease', { numberOfKeys: 1, lua: RELEASE });
    this.commands = this.redis as unknown as ThrottleCommands;
    this.breakers = breakers;
    this.logger = logger.child({ component: 'login-throttle' });
    this.keyMac = keyMac;
    this.policy = policy;
    this.warnings = new WarnLimiter(this.logger, warnEveryMs, now);
    this.decisions = metrics.counter({
      name: 'login_throttle_decisions_total',
      help: 'login attempts by throttle decision (admitted, throttled, unthrottled = Redis unavailable, failed open)',
      labelNames: ['decision'],
    });
  }

  async admit(account: LoginAccount): Promise<LoginAdmission> {
    const key = await this.key(account);
    let reply: [number, number];
    try {
      reply = await this.call(() =>
        this.commands.loginAdmit(key, this.policy.maxFailures, this.policy.windowMs),
      );
    } catch (error) {
      this.decisions.inc({ decision: 'unthrottled' });
      this.unavailable('admit', error);
      return { admitted: true, attempt: UNCOUNTED_ATTEMPT };
    }
    if (this.warnings.warned) this.available();
    const [admitted, msLeft] = reply;
    if (admitted !== 1) {
      this.decisions.inc({ decision: 'throttled' });
      return { admitted: false, retryAfterSeconds: Math.max(1, Math.ceil(Number(msLeft) / 1000)) };
    }
    this.decisions.inc({ decision: 'admitted' });
    return {
      admitted: true,
      attempt: {
        settle: async (outcome) => {
          if (outcome === 'failed') return;
          try {
            if (outcome === 'succeeded') await this.call(() => this.redis.del(key));
            else await this.call(() => this.commands.loginRelease(key));
          } catch (error) {
            this.unavailable(outcome === 'succeeded' ? 'clear' : 'release', error);
          }
        },
      },
    };
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  private async key({ tenantId, email }: LoginAccount): Promise<string> {
    const mac = await this.keyMac.sign(new TextEncoder().encode(`${tenantId}\u0000${email}`));
    const hex = Array.from(mac.subarray(0, MAC_HEX_CHARS / 2), (b) => b.toString(16).padStart(2, '0')).join(
      '',
    );
    return `sg:{${tenantId}}:_login:${hex}`;
  }

  /**
   * A call through the `redis` breaker. Half-open: refused at once, while the breaker's one
   * background trial loop (PINGs, or the read cache's trial reads when it started the loop) runs
   * until the breaker closes or opens again — a Redis that still hangs costs no login the call
   * timeout.
   */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    return this.breakers.get(BREAKER, 'redis').executeOrTrial(() => fn(), this.trials);
  }

  // slow answers count as failures, as the read cache's on the same breaker
  private readonly trials = { trial: () => this.redis.ping(), slowFails: true };

  /** Redis answered again after a warning: says so, and the next outage warns at once */
  private available(): void {
    this.logger.info({ unloggedWarnings: this.warnings.reset() }, 'login throttle available again');
  }

  /** at most one warning per `warnEveryMs` (WarnLimiter); it counts the ones it stands for */
  private unavailable(op: string, error: unknown): void {
    this.warnings.warn(
      { op, err: error instanceof Error ? error.message : String(error) },
      'login throttle unavailable: logins are admitted unthrottled (fail open)',
    );
  }
}
