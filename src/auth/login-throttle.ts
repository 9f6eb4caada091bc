/**
 * Per-account throttling of failed logins (OWASP Authentication Cheat Sheet, "login throttling"):
 * an account (tenant + normalised email) that has had `maxFailures` failed logins within a window
 * of `windowMs` answers 429 to every further attempt until that window ends, whatever the
 * password, and without verifying it (no argon2 cost is spent on a throttled attempt). The window
 * is fixed: it starts at the first counted attempt and is not extended by later ones. A
 * successful login clears the account's failures; with no other attempt in flight it ends the
 * window too, and the next attempt starts a new one. An unknown email is an account like any
 * other, so the answers never tell whether it exists.
 *
 * Attempts are counted when they are admitted, not when they fail: `admit` reserves a slot
 * before the password is verified, and the attempt then settles it — a failure turns it into a
 * counted failure, a success clears the account's failures, an attempt without a verdict (a
 * dependency failed) gives it back. So at most `maxFailures` failing verifications run per
 * account and window (a success, which needs the password, clears them), however many attempts are sent at once or spread over how many instances (counting
 * after the failure would let a burst of parallel guesses all pass the check before the first
 * failure is recorded). The price: while failures and attempts in flight together reach
 * `maxFailures`, a further attempt is refused too — but told to retry in 1 s (`reason:
 * 'in_flight'`), not to wait out the window, which only `maxFailures` settled failures earn.
 *
 * Each attempt belongs to the window it was admitted in: settling it after that window ended (or
 * after the account's failures were cleared and a new window began) changes nothing in the new
 * one. An attempt not settled within `staleAttemptMs` (its process died, or its settle could not
 * reach the store) is counted as a failure then — it may have checked the password — and its late
 * settle changes nothing.
 *
 * Anyone who knows an email can lock that account out for one window by failing on purpose;
 * that is the accepted cost of per-account throttling (the window ends by itself).
 *
 * Implementations: `MemoryLoginThrottle` (unit tests; one process) and `RedisLoginThrottle`
 * (shared by every instance; fails open while Redis is unavailable — see that file).
 */
import { normaliseEmail } from '../domain/members.js';

export interface LoginThrottlePolicy {
  /** failed attempts an account may have within one window before it is throttled */
  maxFailures: number;
  /** window length in ms, from the first counted attempt */
  windowMs: number;
  /** an admitted attempt not settled within this many ms is counted as a failure */
  staleAttemptMs: number;
}

/**
 * After 10 failures within 15 minutes, 429 until those 15 minutes have passed. A login's steps are
 * each bounded by a breaker's call timeout (seconds), so one unsettled after a minute is not coming.
 */
export const LOGIN_THROTTLE_POLICY: LoginThrottlePolicy = {
  maxFailures: 10,
  windowMs: 15 * 60_000,
  staleAttemptMs: 60_000,
};

export interface LoginAccount {
  tenantId: string;
  /** as `normaliseEmail` (domain/members.ts) gives it: build with `loginAccount` */
  email: string;
}

/** the account an attempt is for: `Ann@Example.com ` and `ann@example.com` are one */
export function loginAccount(tenantId: string, email: string): LoginAccount {
  return { tenantId, email: normaliseEmail(email) };
}

/** how an admitted attempt ended */
export type LoginOutcome = 'succeeded' | 'failed' | 'undecided';

export interface LoginAttempt {
  /**
   * `failed`: counted as a failure (wrong password or unknown email); `succeeded`: the account's
   * failures are cleared; `undecided` (no verdict: the member lookup or the token failed): not
   * counted. Does nothing once the attempt's window has ended or the attempt went stale. Never
   * throws; call it once.
   */
  settle(outcome: LoginOutcome): Promise<void>;
}

export type LoginAdmission =
  | { admitted: true; attempt: LoginAttempt }
  | {
      admitted: false;
      /**
       * `failures`: `maxFailures` failed within the window; `in_flight`: failures and attempts
       * still being checked together reach it
       */
      reason: 'failures' | 'in_flight';
      /** for `Retry-After` (≥ 1): the rest of the window for `failures`, 1 for `in_flight` */
      retryAfterSeconds: number;
    };

/** a refusal because `maxFailures` have failed: until the window ends, `msLeft` from now */
export function refusedForFailures(msLeft: number): LoginAdmission {
  return { admitted: false, reason: 'failures', retryAfterSeconds: Math.max(1, Math.ceil(msLeft / 1000)) };
}

/** a refusal because attempts in flight fill the budget: they settle within moments */
export const REFUSED_IN_FLIGHT: LoginAdmission = {
  admitted: false,
  reason: 'in_flight',
  retryAfterSeconds: 1,
};

export interface LoginThrottle {
  /**
   * Before the password is verified. Never throws: an implementation that cannot reach its
   * store admits (fails open) and says so in its own logs.
   */
  admit(account: LoginAccount): Promise<LoginAdmission>;
  close(): Promise<void>;
}

/** An attempt that was not counted (the throttle failed open): settling it does nothing. */
export const UNCOUNTED_ATTEMPT: LoginAttempt = { settle: async () => {} };
