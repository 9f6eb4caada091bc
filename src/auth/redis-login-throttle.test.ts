/**
 * RedisLoginThrottle's failure mode without a Redis: a port nothing listens on. Logins are
 * admitted (fail open), each at once once the `redis` breaker is open, with one warning for
 * them all. Its behaviour against a real Redis is in test/login-throttle.test.ts.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import type { Logger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { loginAccount } from './login-throttle.js';
import { RedisLoginThrottle } from './redis-login-throttle.js';

function capturingLogger(lines: { level: string; msg?: string }[]): Logger {
  const log = (level: string) => (_obj: object, msg?: string) => lines.push({ level, msg });
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
    const lines: { level: string; msg?: string }[] = [];
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
    const account = loginAccount('acme', 'ann@example.com');
    const threshold = config.current().breakers.redis.failure_threshold;
    for (let i = 0; i < threshold + 20; i++) {
      const started = performance.now();
      const admission = await throttle.admit(account);
      expect(admission.admitted).toBe(true);
      if (admission.admitted) await admission.attempt.settle('failed');
      // generous bound: refused without waiting for a connection or a timeout
      expect(performance.now() - started).toBeLessThan(500);
    }
    expect(breakers.get('redis', 'redis').state).toBe('open');
    const warnings = lines.filter((l) => l.level === 'warn' && l.msg?.startsWith('login throttle'));
    expect(warnings).toHaveLength(1);
  });
});
