import { describe, expect, it } from 'vitest';
import { loginAccount } from './login-throttle.js';
import { MemoryLoginThrottle } from './memory-login-throttle.js';

const account = loginAccount('t1', 'ann@example.com');
const policy = { maxFailures: 3, windowMs: 60_000 };

describe('MemoryLoginThrottle', () => {
  it('refuses for checks in flight with Retry-After 1, for failures with the rest of the window', async () => {
    let now = 1_000_000;
    const throttle = new MemoryLoginThrottle({ policy, now: () => now });
    const admitted = [];
    for (let i = 0; i < 3; i++) {
      const a = await throttle.admit(account);
      if (!a.admitted) throw new Error('admitted expected');
      admitted.push(a.attempt);
    }
    // three in flight, none failed: the next one may come back in a second (before: 60 s)
    expect(await throttle.admit(account)).toEqual({ admitted: false, retryAfterSeconds: 1, inFlight: true });
    await admitted[0]!.settle('failed');
    await admitted[1]!.settle('failed');
    expect(await throttle.admit(account)).toEqual({ admitted: false, retryAfterSeconds: 1, inFlight: true });
    await admitted[2]!.settle('failed');
    now += 10_000;
    expect(await throttle.admit(account)).toEqual({ admitted: false, retryAfterSeconds: 50 });
  });

  it('counts a check without a verdict neither as attempt nor as failure; a success clears both', async () => {
    const throttle = new MemoryLoginThrottle({ policy });
    const first = await throttle.admit(account);
    const second = await throttle.admit(account);
    if (!first.admitted || !second.admitted) throw new Error('admitted expected');
    await first.attempt.settle('failed');
    await second.attempt.settle('undecided');
    expect(throttle.counted(account)).toBe(1);
    const third = await throttle.admit(account);
    if (!third.admitted) throw new Error('admitted expected');
    await third.attempt.settle('succeeded');
    expect(throttle.counted(account)).toBe(0);
  });
});
