import { describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { BreakerOpenError } from '../resilience/errors.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { guardedByBreaker } from './guarded-by-breaker.js';
import { MemoryCacheStore } from './memory.js';

function setUp() {
  const config = new MemoryConfigStore({
    initial: { 'breakers/redis/failure_threshold': '1', 'breakers/redis/reset_timeout_ms': '60000' },
  });
  const breakers = new BreakerRegistry({
    config,
    logger: recordingLogger().logger,
    metrics: createPromMetrics(),
  });
  const breaker = breakers.get('redis', 'redis');
  const store = new MemoryCacheStore();
  return { breaker, store, guarded: guardedByBreaker(store, breaker) };
}

describe('guardedByBreaker', () => {
  it('lets calls through while the breaker is closed, without counting them', async () => {
    const { breaker, store, guarded } = setUp();
    await guarded.set('k', 'v', 60);
    expect(await store.get('k')).toBe('v');
    expect(await guarded.get('k')).toBe('v');
    // a failing store: its error reaches the caller, the breaker stays closed with no failure
    const failing = guardedByBreaker(
      {
        get: async () => {
          throw new Error('ECONNRESET');
        },
        set: async () => {
          throw new Error('ECONNRESET');
        },
      },
      breaker,
    );
    await expect(failing.set('k', 'w', 60)).rejects.toThrow('ECONNRESET');
    expect(breaker.view()).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('refuses every call while the breaker is open, and the store is not called', async () => {
    const { breaker, store, guarded } = setUp();
    await store.set('k', 'v', 60);
    await breaker
      .execute(async () => {
        throw new Error('ECONNREFUSED');
      })
      .catch(() => {});
    expect(breaker.state).toBe('open');
    await expect(guarded.set('k', 'new', 60)).rejects.toBeInstanceOf(BreakerOpenError);
    await expect(guarded.get('k')).rejects.toBeInstanceOf(BreakerOpenError);
    expect(await store.get('k')).toBe('v');
  });
});
