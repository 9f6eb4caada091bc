/**
 * Services built from memory adapters, for the fast unit tests beside the code
 * (`createApp(createMemoryServices())` + `app.request()`). Override any field.
 */
import type { Services } from '../app-env.js';
import { JwtMemberTokens } from '../auth/jwt-member-tokens.js';
import { MemoryLoginThrottle } from '../auth/memory-login-throttle.js';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { MemoryCacheStore } from '../cache/memory.js';
import { ReadCache } from '../cache/read-cache.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { REQUEST_FINGERPRINT_LABEL } from '../domain/idempotency.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { SealedConsistencyTokens } from '../routing/consistency-token.js';

/** the secret of memory services' member and consistency tokens (tests may forge with it) */
export const TEST_SECRET = 'test-secret-test-secret-test-secret-0123';

export function createMemoryServices(
  overrides: Partial<Services> & { config?: MemoryConfigStore; draining?: () => boolean } = {},
): Services & { config: MemoryConfigStore } {
  const config = overrides.config ?? new MemoryConfigStore();
  const metrics = overrides.metrics ?? createNoopMetrics();
  const logger = overrides.logger ?? silentLogger;
  const breakers = overrides.breakers ?? new BreakerRegistry({ config, logger, metrics });
  const cache =
    overrides.cache ?? new ReadCache({ store: new MemoryCacheStore(), config, breakers, logger, metrics });
  const { draining = () => false, ...rest } = overrides;
  return {
    instanceId: 'api-test',
    startedAt: new Date().toISOString(),
    lifecycle: { isDraining: draining },
    data: new MemoryDataAccess(),
    replication: { status: () => [] },
    passwords: new TestPasswordHasher(),
    memberTokens: new JwtMemberTokens({ secret: TEST_SECRET, logger, metrics }),
    loginThrottle: new MemoryLoginThrottle(),
    consistencyTokens: new SealedConsistencyTokens({ secret: TEST_SECRET }),
    requestFingerprints: webCryptoDerivedMac({ secret: TEST_SECRET, label: REQUEST_FINGERPRINT_LABEL }),
    ...rest,
    config,
    metrics,
    logger,
    breakers,
    cache,
  };
}
