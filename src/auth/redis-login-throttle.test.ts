/**
 * RedisLoginThrottle's failure mode without a Redis: a port nothing listens on. Logins are
 * admitted (fail open), each at once once the `redis` breaker is open, with one warning for
 * them all. Its behaviour against a real Redis is in test/login-throttle.test.ts.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import type { Logger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { loginAccount } from './login-throttle.js';
import { RedisLoginThrottle } from './redis-login-throttle.js';

function capturingLogger(lines: { level: string; msg?: string; obj: object }[]): Logger {
  const log = (level: string) => (obj: object, msg?: string) => lines.push({ level, msg, obj });
  const logger: Logger = {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: () => logger,
  };
  return logger;
}

let throttle: RedisLoginThrottle | undefined;
afterEach(async () => {
  await throttle?.close();
});

describe('RedisLoginThrottle without Redis', () => {
  it('fails open, refuses at once through the open breaker, and warns once', async () => {
    const config = new MemoryConfigStore();
    const metrics = createNoopMetrics();
    const lines: { level: string; msg?: string; obj: object }[] = [];
    const logger = capturingLogger(lines);
    const breakers = new BreakerRegistry({ config, logger, metrics });
    throttle = new RedisLoginThrottle({
      // nothing listens on port 1: every command fails (no offline queue, so at once)
      url: 'redis://127.0.0.1:1',
      breakers,
      logger,
      metrics,
      keyMac: webCryptoDerivedMac({ secret: 'test-secret-test-secret-test-secret-0123', label: 't' }),
    });
    // the admissions that reach the Redis client (the breaker lets them through)
    const redis = (throttle as unknown as { redis: Record<string, (...args: unknown[]) => unknown> }).redis;
    const sent = vi.spyOn(redis, 'loginAdmit');
    const account = loginAccount('acme', 'ann@example.com');
    const threshold = config.current().breakers.redis.failure_threshold;
    const breaker = breakers.get('redis', 'redis');
    let sentBeforeOpen = -1;
    for (let i = 0; i < threshold + 20; i++) {
      const admission = await throttle.admit(account);
      expect(admission.admitted).toBe(true);
      if (admission.admitted) await admission.attempt.settle('failed');
      if (sentBeforeOpen < 0 && breaker.state === 'open') sentBeforeOpen = sent.mock.calls.length;
    }
    expect(breaker.state).toBe('open');
    // the failures that opened it were the threshold's; once open, the other admissions (20 and
    // more) are refused by the breaker without a command to Redis
    expect(sentBeforeOpen).toBe(threshold);
    expect(sent).toHaveBeenCalledTimes(threshold);
    const warnings = lines.filter((l) => l.level === 'warn' && l.msg?.startsWith('login throttle'));
    expect(warnings).toHaveLength(1);
    // and those failed at once (no offline queue), not by waiting for a connection or a timeout
    expect(String((warnings[0]!.obj as { err?: string }).err)).not.toMatch(
      /timed? ?out|did not answer within/i,
    );
  });
});
