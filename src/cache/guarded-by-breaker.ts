/**
 * A cache store's `get` and `set` behind a breaker, for a background task that uses the store
 * beside the read cache (the master history marks): refused at once (BreakerOpenError) while the
 * breaker refuses calls (`refuseIfOpen`), so no command reaches a Redis the breaker judged down or
 * slow. A call let through is not counted by the breaker, neither as success nor as failure: one
 * background command each few seconds adds nothing to what the read cache's calls tell, and the
 * first would fail at start whenever it came before the client's connection was ready. Before, the
 * marks went to Redis whatever the breaker said: one command each 5 s per shard while it was open
 * (an outside CI run saw one among reads that must not call Redis).
 */
import type { CircuitBreaker } from '../resilience/circuit-breaker.js';
import type { CacheStore } from './interface.js';

export function guardedByBreaker(
  store: Pick<CacheStore, 'get' | 'set'>,
  breaker: Pick<CircuitBreaker, 'refuseIfOpen'>,
): Pick<CacheStore, 'get' | 'set'> {
  return {
    get: async (key) => {
      breaker.refuseIfOpen();
      return store.get(key);
    },
    set: async (key, value, ttlSeconds) => {
      breaker.refuseIfOpen();
      return store.set(key, value, ttlSeconds);
    },
  };
}
