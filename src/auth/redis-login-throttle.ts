/**
 * LoginThrottle on Redis, shared by every API instance: one hash per account at
 * `sg:{<tenant>}:_login:h:<mac>` (the tenant's hash tag, like the read cache; `_` because a shard
 * id cannot hold one, so no shard's cache namespace `sg:{<tenant>}:<shard>:` covers the counters
 * and a tenant move that clears one leaves them alone), where `<mac>` is a
 * keyed MAC of tenant + normalised email (`keyMac`, derived from the server secret): no email is
 * stored in clear, and one cannot be confirmed by hashing a guess without the secret.
 *
 * Key rotation: an attempt is counted under the current secret's key only; with `acceptedKeyMac`
 * (SHARDGATE_JWT_SECRET_ACCEPTED) the admission also reads the account's hash under the accepted
 * secret's key, and decides on both together (its failures, stale attempts as failures, and its
 * attempts in flight), without writing it: instances on the other side of a rolling secret change
 * count there, and they read this side's hash in turn, so the fleet keeps one budget per account
 * and a change of secret clears no lockout. A success clears the failures of both. Read, not
 * migrated: a count under the accepted key simply expires with its window. (Without an accepted
 * secret, a change of secret orphaned the counters: every lockout ended at once, and a mixed fleet
 * gave each secret a budget of its own.)
 *
 * The hash: `f` the window's settled failures, `a:<attempt id>` each attempt in flight with when
 * it was admitted (Redis's own clock, `TIME`, so instances' clocks do not matter). The key's
 * expiry is the window: everything in it ends together, so neither a failure nor an attempt can
 * outlive its window, and an attempt settled after its window ended finds its field gone and
 * changes nothing. At most `maxFailures` + 1 fields. A field that is not a number (only an outside
 * writer makes one) is taken as a stale attempt, a bad `f` as its whole part.
 *
 * Versions before the hash kept a string counter at `sg:{<tenant>}:_login:<mac>` (attempts failed
 * or in flight). The next admission takes it over as that many failures, with its expiry when the
 * hash has none, and deletes it; while such an instance still runs (a rolling upgrade) it keeps
 * counting there, and what it counts is taken over by the next admission here, in-flight attempts
 * as failures. The two versions never meet a key of the other's type.
 *
 * One round trip per decision: a script turns stale attempts into failures, decides, records the
 * attempt and sets the window's expiry on the first one (also on a key found without one). One
 * more round trip to settle (every outcome: a failure moves from in flight to `f`; an attempt
 * found stale counts as a failure whatever it says, as the next admission would have counted it).
 * Both scripts keep the key's expiry across the moment a hash emptied by HDEL is deleted and
 * written again.
 *
 * Failure mode: FAIL OPEN. Every call goes through the `redis` breaker, shared with the read
 * cache. While Redis is down, slow or its breaker open, logins are admitted unthrottled and a
 * warning is logged at most once per `warnEveryMs` (1 min) per instance; the
 * `login_throttle_decisions_total{decision="unthrottled"}` counter shows every such admission.
 * A login then costs no more than the breaker allows: refused at once while it is open or
 * half-open (the half-open trials are this module's own background PINGs, never a login's
 * call — as in cache/read-cache.ts), at most `call_timeout_ms` (capped by the client's
 * `commandTimeoutMs`) while it is still closed. An error Redis answers (a script's, a key's type)
 * fails that login open too but does not count against the breaker: Redis is up. A settle that
 * cannot reach Redis is dropped: its attempt stays in flight and is counted as a failure once
 * stale (`staleAttemptMs`), so a success whose failures were not cleared leaves them to expire
 * with their window. An admission given up on (the call timeout) is followed by a delete of its
 * attempt on the same connection (`forget`): a frozen Redis that runs the admission late runs
 * the delete right after it, so no attempt of a login that was let through unthrottled stays.
 */
import { once } from 'node:events';
import { Redis, ReplyError } from 'ioredis';
import { logConnectionErrors } from '../cache/log-connection-errors.js';
import { type NotConnectedCause, notConnectedCause } from '../cache/not-connected-cause.js';
import { failFastRedisOptions } from '../cache/redis.js';
import { replaceHungConnection } from '../cache/replace-hung-connection.js';
import type { DerivedMac } from '../crypto/derived-mac.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import {
  LOGIN_THROTTLE_POLICY,
  type LoginAccount,
  type LoginAdmission,
  type LoginOutcome,
  type LoginThrottle,
  type LoginThrottlePolicy,
  REFUSED_IN_FLIGHT,
  refusedForFailures,
  UNCOUNTED_ATTEMPT,
} from './login-throttle.js';

/** the time on Redis's clock, in ms (scripts may call TIME: Redis 5+ replicates their effects) */
const NOW = `
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
`;

/**
 * KEYS[1] the account's hash, KEYS[2] its counter of earlier versions, KEYS[3] its hash under the
 * accepted secret (read only, when ARGV[5] is `1`); ARGV max failures, window ms, stale attempt
 * ms, attempt id, `1`|`0` → {1 admitted | 0 refused, ms until the failures that refuse it fall
 * below the maximum (the window's end), 1 refused for attempts in flight | 0 otherwise}
 */
const ADMIT = `${NOW}
local key, legacy = KEYS[1], KEYS[2]
local max, windowMs, staleMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl = redis.call('PTTL', key)
local failed, inFlight, rewrite = 0, 0, false
if redis.call('TYPE', legacy).ok == 'string' then
  local n = math.floor(tonumber(redis.call('GET', legacy)) or 0)
  local legacyTtl = redis.call('PTTL', legacy)
  redis.call('DEL', legacy)
  if n > 0 then
    failed, rewrite = n, true
    if ttl <= 0 then ttl = legacyTtl end
  end
end
local fields = redis.call('HGETALL', key)
for i = 1, #fields, 2 do
  local name, value = fields[i], tonumber(fields[i + 1])
  if name == 'f' then
    if value == nil or value ~= math.floor(value) or value < 0 then
      value, rewrite = math.max(0, math.floor(value or 0)), true
    end
    failed = failed + value
  elseif value == nil or now - value >= staleMs then
    redis.call('HDEL', key, name)
    failed, rewrite = failed + 1, true
  else
    inFlight = inFlight + 1
  end
end
if rewrite then redis.call('HSET', key, 'f', failed) end
local otherFailed, otherInFlight, otherTtl = 0, 0, windowMs
if ARGV[5] == '1' and redis.call('TYPE', KEYS[3]).ok == 'hash' then
  otherTtl = redis.call('PTTL', KEYS[3])
  if otherTtl <= 0 then otherTtl = windowMs end
  local other = redis.call('HGETALL', KEYS[3])
  for i = 1, #other, 2 do
    local name, value = other[i], tonumber(other[i + 1])
    if name == 'f' then
      otherFailed = otherFailed + math.max(0, math.floor(value or 0))
    elseif value == nil or now - value >= staleMs then
      otherFailed = otherFailed + 1
    else
      otherInFlight = otherInFlight + 1
    end
  end
end
local admitted, busy = 0, 0
if failed + otherFailed >= max then
  busy = 0
elseif failed + otherFailed + inFlight + otherInFlight >= max then
  busy = 1
else
  redis.call('HSET', key, 'a:' .. ARGV[4], now)
  admitted = 1
end
if redis.call('EXISTS', key) == 1 then
  if ttl <= 0 then ttl = windowMs end
  redis.call('PEXPIRE', key, ttl)
end
-- refused for failures: until enough of them expire. Neither side alone reaching the maximum,
-- the first of the two windows to end brings the sum below it
local left = ttl
if failed >= max and otherFailed >= max then
  -- both sides full: until both windows ended
  left = math.max(ttl, otherTtl)
elseif failed < max then
  if otherFailed >= max or failed == 0 then
    left = otherTtl
  elseif otherFailed > 0 then
    left = math.min(ttl, otherTtl)
  end
end
return {admitted, left, busy}
`;

/**
 * KEYS[1] the account's hash, KEYS[2] its hash under the accepted secret (a success clears its
 * failures too, when ARGV[4] is `1`); ARGV attempt id, outcome, stale attempt ms, `1`|`0` → 1
 * settled | 0 not (its window ended, or the attempt was stale: counted as a failure)
 */
const SETTLE = `${NOW}
local key, field = KEYS[1], 'a:' .. ARGV[1]
if redis.call('TYPE', key).ok ~= 'hash' then return 0 end
local at = tonumber(redis.call('HGET', key, field))
if at == nil then return 0 end
local ttl = redis.call('PTTL', key)
redis.call('HDEL', key, field)
local stale = now - at >= tonumber(ARGV[3])
if stale or ARGV[2] == 'failed' then
  redis.call('HINCRBY', key, 'f', 1)
elseif ARGV[2] == 'succeeded' then
  redis.call('HDEL', key, 'f')
  if ARGV[4] == '1' and redis.call('TYPE', KEYS[2]).ok == 'hash' then
    local otherTtl = redis.call('PTTL', KEYS[2])
    redis.call('HDEL', KEYS[2], 'f')
    if otherTtl > 0 and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('PEXPIRE', KEYS[2], otherTtl) end
  end
end
if ttl > 0 and redis.call('EXISTS', key) == 1 then redis.call('PEXPIRE', key, ttl) end
if stale then return 0 end
return 1
`;

/** the HKDF label of the key of the account keys' MAC (`keyMac`, `acceptedKeyMac`) */
export const LOGIN_THROTTLE_LABEL = 'shardgate/login-throttle/v1';

/** the breaker every Redis call of this instance passes (cache/read-cache.ts uses it too) */
const BREAKER = 'redis';
/**
 * How long an admission waits for a connection being made (a reconnect: Redis closed an idle
 * connection at its `timeout`, a `CLIENT KILL`, a replaced hung one) before it fails open. The
 * client reconnects 100 ms after a close (failFastRedisOptions); without the wait every login in
 * between went unthrottled (an outside check with `timeout 1`: 15 password checks of 20 wrong
 * guesses, where the limit is 10). Not while the breaker is open: a Redis that is down is not
 * waited for by every login.
 */
const RECONNECT_WAIT_MS = 250;
const MAC_HEX_CHARS = 32;
/** bounds the deletes kept for the next connection (each one admission given up on) */
const MAX_UNSENT_FORGETS = 10_000;

interface ThrottleCommands {
  loginAdmit(
    key: string,
    legacyKey: string,
    acceptedKey: string,
    maxFailures: number,
    windowMs: number,
    staleAttemptMs: number,
    attemptId: string,
    withAccepted: '1' | '0',
  ): Promise<[number, number, number]>;
  loginSettle(
    key: string,
    acceptedKey: string,
    attemptId: string,
    outcome: LoginOutcome,
    staleAttemptMs: number,
    withAccepted: '1' | '0',
  ): Promise<number>;
}

export interface RedisLoginThrottleOptions {
  url: string;
  breakers: BreakerRegistry;
  logger: Logger;
  metrics: Metrics;
  /** pseudonymises tenant + email into the key (e.g. nodeDerivedMac of the server secret) */
  keyMac: DerivedMac;
  /**
   * the same under SHARDGATE_JWT_SECRET_ACCEPTED (key rotation): the account's count under it is
   * read with this one's, never written
   */
  acceptedKeyMac?: DerivedMac;
  policy?: LoginThrottlePolicy;
  /** hard ceiling per command; the breaker's call_timeout_ms normally abandons the call first */
  commandTimeoutMs?: number;
  /** at most one "throttle unavailable" warning per this many ms */
  warnEveryMs?: number;
  /** the clock of the warning limiter: monotonic (a wall-clock step must not silence it) */
  now?: () => number;
}

export class RedisLoginThrottle implements LoginThrottle {
  // A connection of its own, not the read cache's: that one has CLIENT TRACKING on for the near
  // cache, and Redis would then track every login key it touched and announce each change.
  private readonly redis: Redis;
  /** a command refused while not connected says why (cache/not-connected-cause.ts) */
  private readonly withCause: NotConnectedCause;
  /** attempt id → key of the deletes `forget` could not send, for the next connection */
  private readonly unsentForgets = new Map<string, string>();
  private readonly commands: ThrottleCommands;
  private readonly breakers: BreakerRegistry;
  private readonly logger: Logger;
  private readonly keyMac: DerivedMac;
  private readonly acceptedKeyMac: DerivedMac | undefined;
  private readonly policy: LoginThrottlePolicy;
  private readonly decisions;
  private readonly warnings: WarnLimiter;

  constructor({
    url,
    breakers,
    logger,
    metrics,
    keyMac,
    acceptedKeyMac,
    policy = LOGIN_THROTTLE_POLICY,
    commandTimeoutMs = 1000,
    warnEveryMs = 60_000,
    now = () => performance.now(),
  }: RedisLoginThrottleOptions) {
    let cause: NotConnectedCause | undefined;
    this.redis = new Redis(
      url,
      failFastRedisOptions({ commandTimeoutMs, reconnectAtOnce: () => cause?.reconnectAtOnce() ?? false }),
    );
    this.withCause = cause = notConnectedCause(this.redis);
    // connection errors surface on the commands; do not crash on the emitter
    this.logger = logger.child({ component: 'login-throttle' });
    logConnectionErrors(this.redis, this.logger, 'login-throttle');
    this.redis.on('ready', () => this.sendUnsentForgets());
    replaceHungConnection(this.redis, {
      onReplace: () => {
        // this process's own drop: no grace (the timeouts that led here counted)
        this.withCause.forgoNextGrace();
        this.logger.warn(
          { connection: 'login-throttle' },
          'redis answered nothing on a connection in time: replacing it',
        );
      },
    });
    this.redis.defineCommand('loginAdmit', { numberOfKeys: 3, lua: ADMIT });
    this.redis.defineCommand('loginSettle', { numberOfKeys: 2, lua: SETTLE });
    this.commands = this.redis as unknown as ThrottleCommands;
    this.breakers = breakers;
    this.keyMac = keyMac;
    this.acceptedKeyMac = acceptedKeyMac;
    this.policy = policy;
    this.warnings = new WarnLimiter(this.logger, warnEveryMs, now);
    this.decisions = metrics.counter({
      name: 'login_throttle_decisions_total',
      help: 'login attempts by throttle decision (admitted; throttled = too many failures; in_flight = refused while attempts in flight fill the budget; unthrottled = Redis unavailable, failed open)',
      labelNames: ['decision'],
    });
  }

  async admit(account: LoginAccount): Promise<LoginAdmission> {
    const { key, legacyKey, acceptedKey } = await this.keys(account);
    await this.reconnected();
    // without an accepted secret the script reads no third key: its own, in the same slot, stands in
    const other = acceptedKey ?? key;
    const withAccepted = acceptedKey === undefined ? '0' : '1';
    const attemptId = crypto.randomUUID();
    const { maxFailures, windowMs, staleAttemptMs } = this.policy;
    let reply: [number, number, number];
    let sent = false;
    try {
      reply = await this.call(() => {
        sent = true;
        return this.commands.loginAdmit(
          key,
          legacyKey,
          other,
          maxFailures,
          windowMs,
          staleAttemptMs,
          attemptId,
          withAccepted,
        );
      });
    } catch (error) {
      // an admission given up on (the call timeout) may still run: a frozen Redis runs it when it
      // resumes, and nothing would settle the attempt it records
      if (sent) this.forget(key, attemptId);
      this.decisions.inc({ decision: 'unthrottled' });
      this.unavailable('admit', error);
      return { admitted: true, attempt: UNCOUNTED_ATTEMPT };
    }
    if (this.warnings.warned) this.available();
    const [admitted, msLeft, inFlight] = reply;
    if (admitted !== 1) {
      this.decisions.inc({ decision: inFlight === 1 ? 'in_flight' : 'throttled' });
      return inFlight === 1 ? REFUSED_IN_FLIGHT : refusedForFailures(Number(msLeft));
    }
    this.decisions.inc({ decision: 'admitted' });
    return {
      admitted: true,
      attempt: {
        settle: async (outcome) => {
          try {
            await this.call(() =>
              this.commands.loginSettle(key, other, attemptId, outcome, staleAttemptMs, withAccepted),
            );
          } catch (error) {
            // left in flight: counted as a failure once stale (policy.staleAttemptMs)
            this.unavailable(`settle ${outcome}`, error);
          }
        },
      },
    };
  }

  /**
   * Deletes the attempt an admission given up on may have recorded. Sent on the same connection
   * right behind the admission, so Redis runs it after it: a Redis that was frozen (SIGSTOP, a
   * long fork) runs both when it resumes, and the attempt is gone at once. Before, each such
   * attempt stayed in flight and turned into a failure once stale: an outside check had accounts
   * that only ever sent the right password locked for the 15-minute window after two 10 s Redis
   * freezes. Not through the breaker (its verdict is about the admission, already counted), not
   * awaited; when the connection is gone it fails at once (no offline queue), and so did the
   * admission's delivery, or Redis drops both with the connection.
   */
  private forget(key: string, attemptId: string): void {
    this.redis.hdel(key, `a:${attemptId}`).catch(() => {
      // not sent: the connection is being replaced (replace-hung-connection.ts), and ioredis sends
      // the admission again on the next one; the delete follows it there (kept for the next one)
      if (this.unsentForgets.size < MAX_UNSENT_FORGETS) this.unsentForgets.set(attemptId, key);
    });
  }

  /**
   * Once a new connection is ready: the deletes of `forget` that could not be sent, after the
   * admissions ioredis sends again (it re-sends them before `ready` is emitted, on nextTick). A
   * delete that fails again is kept again (`forget`), for the connection after.
   */
  private sendUnsentForgets(): void {
    setImmediate(() => {
      for (const [attemptId, key] of this.unsentForgets) {
        this.unsentForgets.delete(attemptId);
        this.forget(key, attemptId);
      }
    });
  }

  /**
   * Resolves once the connection is up. Until then every command fails at once (no offline queue)
   * and `admit` fails open, so a caller that needs the throttle in force (a test) awaits this.
   */
  async ready(): Promise<void> {
    if (this.redis.status !== 'ready') await once(this.redis, 'ready');
  }

  async close(): Promise<void> {
    this.redis.disconnect();
  }

  /** resolves once a connection being made is ready, or after RECONNECT_WAIT_MS; never rejects */
  private async reconnected(): Promise<void> {
    const status = this.redis.status;
    if (status === 'ready' || status === 'end' || status === 'wait') return;
    if (this.breakers.get(BREAKER, 'redis').state !== 'closed') return;
    const stop = new AbortController();
    const timer = setTimeout(() => stop.abort(), RECONNECT_WAIT_MS);
    try {
      await once(this.redis, 'ready', { signal: stop.signal });
    } catch {
      // the wait ended (or the client emitted an error): the admission goes on and fails open
    } finally {
      clearTimeout(timer);
    }
  }

  private async keys({
    tenantId,
    email,
  }: LoginAccount): Promise<{ key: string; legacyKey: string; acceptedKey?: string }> {
    const data = new TextEncoder().encode(`${tenantId}\u0000${email}`);
    const hexOf = async (keyMac: DerivedMac) =>
      Array.from((await keyMac.sign(data)).subarray(0, MAC_HEX_CHARS / 2), (b) =>
        b.toString(16).padStart(2, '0'),
      ).join('');
    const hex = await hexOf(this.keyMac);
    const acceptedKey =
      this.acceptedKeyMac && `sg:{${tenantId}}:_login:h:${await hexOf(this.acceptedKeyMac)}`;
    return {
      key: `sg:{${tenantId}}:_login:h:${hex}`,
      legacyKey: `sg:{${tenantId}}:_login:${hex}`,
      acceptedKey,
    };
  }

  /**
   * A call through the `redis` breaker. Half-open: refused at once, while the breaker's one
   * background trial loop (PINGs, or the read cache's trial reads when it started the loop) runs
   * until the breaker closes or opens again — a Redis that still hangs costs no login the call
   * timeout.
   */
  private call<T>(fn: () => Promise<T>): Promise<T> {
    return this.breakers.get(BREAKER, 'redis').executeOrTrial(
      () =>
        fn().catch((error: unknown) => {
          throw this.withCause(error);
        }),
      this.trials,
    );
  }

  // slow answers count as failures, as the read cache's on the same breaker; an error Redis
  // answered (ReplyError: a script's or a key type's) does not: Redis is up
  private readonly trials = {
    // a PING refused for want of a descriptor to reconnect is no more Redis's failure than a command
    trial: () =>
      this.redis.ping().catch((error: unknown) => {
        throw this.withCause(error);
      }),
    slowFails: true,
    isFailure: (error: unknown) => !(error instanceof ReplyError),
  };

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
