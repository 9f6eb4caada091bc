/**
 * The rules of auth/login-throttle.ts as test cases, for every LoginThrottle: the memory one runs
 * them in the unit project (src/auth/memory-login-throttle.test.ts, fake clock), the Redis one
 * against the stack's Redis (test/login-throttle.test.ts, real time: Redis's own clock).
 *
 * `make(policy)` builds a throttle with that policy; `advance(ms)` lets that much time pass for it.
 * Every case uses accounts of its own.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type LoginAccount,
  type LoginAdmission,
  type LoginAttempt,
  type LoginThrottle,
  type LoginThrottlePolicy,
  loginAccount,
} from '../auth/login-throttle.js';

/**
 * Short enough for real time; long enough that a case's steps between two waits (a few calls to
 * Redis) never take `staleAttemptMs`, even on a busy box
 */
export const SPEC_POLICY: LoginThrottlePolicy = { maxFailures: 3, windowMs: 6000, staleAttemptMs: 2000 };

export interface LoginThrottleSubject {
  /** a throttle with `policy`, in force (connected) when it resolves */
  make(policy: LoginThrottlePolicy): Promise<LoginThrottle>;
  advance(ms: number): Promise<void>;
}

function admitted(admission: LoginAdmission): LoginAttempt {
  if (!admission.admitted) throw new Error(`refused (${admission.reason}), expected admitted`);
  return admission.attempt;
}

function refusal(admission: LoginAdmission): { reason: string; retryAfterSeconds: number } | 'admitted' {
  return admission.admitted
    ? 'admitted'
    : { reason: admission.reason, retryAfterSeconds: admission.retryAfterSeconds };
}

export function describeLoginThrottle(name: string, subject: LoginThrottleSubject): void {
  const { maxFailures, windowMs, staleAttemptMs } = SPEC_POLICY;
  const windowSeconds = Math.ceil(windowMs / 1000);
  const account = (): LoginAccount => loginAccount('acme', `${randomBytes(6).toString('hex')}@example.com`);
  const fresh = () => subject.make(SPEC_POLICY);

  describe(`${name}: the rules of auth/login-throttle.ts`, () => {
    it('refuses an attempt while failures and attempts in flight fill the budget, with Retry-After 1 only', async () => {
      const throttle = await fresh();
      const ann = account();
      const first = admitted(await throttle.admit(ann));
      await first.settle('failed');
      const inFlight = [];
      for (let i = 1; i < maxFailures; i++) inFlight.push(admitted(await throttle.admit(ann)));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      // one of them settles: room again
      await inFlight[0]!.settle('undecided');
      const next = admitted(await throttle.admit(ann));
      // all of them fail: the window's rest
      for (const attempt of [next, ...inFlight.slice(1)]) await attempt.settle('failed');
      const refused = refusal(await throttle.admit(ann));
      expect(refused).toMatchObject({ reason: 'failures' });
      expect(refused).not.toBe('admitted');
      if (refused !== 'admitted') {
        expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(1);
        expect(refused.retryAfterSeconds).toBeLessThanOrEqual(windowSeconds);
      }
      await throttle.close();
    });

    it('a success clears the failures; a failure settled after it counts in the same window', async () => {
      const throttle = await fresh();
      const ann = account();
      await admitted(await throttle.admit(ann)).settle('failed');
      // a right and a wrong password in flight at once, with the failure before: the budget full
      const right = admitted(await throttle.admit(ann));
      const wrong = admitted(await throttle.admit(ann));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await right.settle('succeeded');
      await wrong.settle('failed');
      // one failure counted: two more attempts fit, a third does not while they are in flight
      const a = admitted(await throttle.admit(ann));
      admitted(await throttle.admit(ann));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await a.settle('failed');
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await throttle.close();
    });

    it("an attempt settled after its window ended changes nothing in the account's next window", async () => {
      const throttle = await fresh();
      const ann = account();
      const lateFailure = admitted(await throttle.admit(ann));
      const lateSuccess = admitted(await throttle.admit(ann));
      await subject.advance(windowMs + 100);
      const inNext = [];
      for (let i = 1; i < maxFailures; i++) inNext.push(admitted(await throttle.admit(ann)));
      await lateFailure.settle('failed');
      // the late failure did not take the last slot of the new window
      const last = admitted(await throttle.admit(ann));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      // nor does a late success clear the new window's failures
      for (const attempt of inNext) await attempt.settle('failed');
      await lateSuccess.settle('succeeded');
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await last.settle('failed');
      expect(refusal(await throttle.admit(ann))).toMatchObject({ reason: 'failures' });
      await throttle.close();
    });

    it('an attempt settled after it went stale counts as a failure, whatever its outcome', async () => {
      const throttle = await fresh();
      const ann = account();
      await admitted(await throttle.admit(ann)).settle('failed');
      const slow = admitted(await throttle.admit(ann));
      await subject.advance(staleAttemptMs + 100);
      // settled before any admission saw it stale: counted all the same, its success clears nothing
      await slow.settle('succeeded');
      admitted(await throttle.admit(ann));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await throttle.close();
    });

    it('an attempt never settled counts as a failure once stale, and settling it then changes nothing', async () => {
      const throttle = await fresh();
      const ann = account();
      const lost = [];
      for (let i = 0; i < maxFailures; i++) lost.push(admitted(await throttle.admit(ann)));
      expect(refusal(await throttle.admit(ann))).toEqual({ reason: 'in_flight', retryAfterSeconds: 1 });
      await subject.advance(staleAttemptMs + 100);
      expect(refusal(await throttle.admit(ann))).toMatchObject({ reason: 'failures' });
      for (const attempt of lost) await attempt.settle('succeeded');
      expect(refusal(await throttle.admit(ann))).toMatchObject({ reason: 'failures' });
      // and the window still ends
      await subject.advance(windowMs);
      admitted(await throttle.admit(ann));
      await throttle.close();
    });

    it('a success with nothing in flight ends the window: a new one starts with the next attempt', async () => {
      const throttle = await fresh();
      const ann = account();
      await admitted(await throttle.admit(ann)).settle('failed');
      await admitted(await throttle.admit(ann)).settle('succeeded');
      await subject.advance(windowMs - 500);
      // a window started before the success would end within 0.5 s; this one is whole
      for (let i = 0; i < maxFailures; i++) await admitted(await throttle.admit(ann)).settle('failed');
      const refused = refusal(await throttle.admit(ann));
      expect(refused).toMatchObject({ reason: 'failures' });
      if (refused !== 'admitted') expect(refused.retryAfterSeconds).toBeGreaterThanOrEqual(windowSeconds - 1);
      await throttle.close();
    });

    it('keeps accounts apart', async () => {
      const throttle = await fresh();
      const ann = account();
      for (let i = 0; i < maxFailures; i++) await admitted(await throttle.admit(ann)).settle('failed');
      expect(refusal(await throttle.admit(ann))).toMatchObject({ reason: 'failures' });
      admitted(await throttle.admit(account()));
      admitted(await throttle.admit({ ...ann, tenantId: 'globex' }));
      await throttle.close();
    });
  });
}
