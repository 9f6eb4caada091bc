/**
 * The services an app is built from and the Hono environment handlers see. Every field is an
 * interface with a real adapter (entry/node.ts) and a memory one (unit tests); handlers reach
 * them through `c.get('services')`, never through module singletons.
 */
import type { ReadCache } from './cache/read-cache.js';
import type { ConfigStore } from './config/interface.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { BreakerRegistry } from './resilience/breaker-registry.js';

export interface Lifecycle {
  /** true once shutdown began: `/health/ready` answers 503 so the load balancer drains us */
  isDraining(): boolean;
}

export interface Services {
  instanceId: string;
  config: ConfigStore;
  logger: Logger;
  lifecycle: Lifecycle;
  metrics: Metrics;
  /** one breaker per dependency node; every dependency call passes through one */
  breakers: BreakerRegistry;
  /** Redis read cache (cache-aside, invalidated by replication position) */
  cache: ReadCache;
}

export type AppEnv = {
  Variables: {
    services: Services;
    requestId: string;
    logger: Logger;
  };
};
