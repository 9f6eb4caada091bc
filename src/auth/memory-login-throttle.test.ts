/**
 * MemoryLoginThrottle against the rules every LoginThrottle follows (testing/login-throttle-spec.ts),
 * on a fake clock. RedisLoginThrottle runs the same cases in test/login-throttle.test.ts.
 */
import { describeLoginThrottle } from '../testing/login-throttle-spec.js';
import { MemoryLoginThrottle } from './memory-login-throttle.js';

let now = 1_700_000_000_000;
describeLoginThrottle('MemoryLoginThrottle', {
  make: async (policy) => new MemoryLoginThrottle({ policy, now: () => now }),
  advance: async (ms) => {
    now += ms;
  },
});
