/**
 * The services an app is built from and the Hono environment handlers see. Every field is an
 * interface with a real adapter (entry/node.ts) and a memory one (unit tests); handlers reach
 * them through `c.get('services')`, never through module singletons.
 */
import type { Context } from 'hono';
import type { LoginThrottle } from './auth/login-throttle.js';
import type { ReadCache } from './cache/read-cache.js';
import type { ConfigStore } from './config/interface.js';
import type { TenantEntry } from './config/schema.js';
import type { DerivedMac } from './crypto/derived-mac.js';
import type { DataAccess, ReplicationPosition, TenantRef } from './domain/data-access.js';
import type { MemberTokens, Principal } from './domain/member-tokens.js';
import type { PasswordHasher, PasswordWork } from './domain/password-hasher.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import type { BreakerRegistry } from './resilience/breaker-registry.js';
import type { DocsAssets } from './routes/docs-page.js';
import type { ConsistencyTokens } from './routing/consistency-token.js';
import type { ShardStatus } from './routing/shard-router.js';
import type { WritesInFlight } from './routing/writes-in-flight.js';

/**
 * A request body the runtime read before the app saw the request (entry/pre-read-body.ts): its
 * text, or that it was larger than the limit the runtime was given (BODY_LIMIT_BYTES), or that
 * its bytes are not UTF-8 (which a lenient decoding would turn into U+FFFD and store).
 */
export type PreReadBody =
  | { text: string; tooLarge?: undefined; notUtf8?: undefined }
  | { tooLarge: true; notUtf8?: undefined }
  | { notUtf8: true; tooLarge?: undefined };

export interface Lifecycle {
  /** true once shutdown began: `/health/ready` answers 503 so the load balancer drains us */
  isDraining(): boolean;
}

export interface Services {
  instanceId: string;
  /**
   * when this process started (ISO 8601), as its registration `instances/<id>` in etcd says: with
   * the id, it names this process apart from an earlier or later one of the same instance
   */
  startedAt: string;
  config: ConfigStore;
  logger: Logger;
  lifecycle: Lifecycle;
  metrics: Metrics;
  /** one breaker per dependency node; every dependency call passes through one */
  breakers: BreakerRegistry;
  /** Redis read cache (cache-aside, invalidated by replication position) */
  cache: ReadCache;
  /** tenant data on the shards (SqlDataAccess) or in memory (MemoryDataAccess) */
  data: DataAccess;
  /** the shard router's view of every shard: replicas with their measured lag and routing state */
  replication: { status(): ShardStatus[] };
  /** argon2id in production, a fast test hasher in unit tests */
  passwords: PasswordHasher;
  /** turns for password work by tenant (auth/password-work-gate.ts); absent: none */
  passwordWork?: PasswordWork;
  /** member JWTs (HS256) */
  memberTokens: MemberTokens;
  /**
   * per-account failed-login throttling (auth/login-throttle.ts): Redis, shared by the instances
   * and failing open while Redis is unavailable; memory in unit tests
   */
  loginThrottle: LoginThrottle;
  /** signs and verifies `X-Consistency-Token` */
  consistencyTokens: ConsistencyTokens;
  /**
   * keys the fingerprint of a request sent with an `Idempotency-Key` (routes/idempotency.ts):
   * the stored fingerprint covers the body, passwords included, so a plain hash would let anyone
   * who reads the table guess a password at hash speed, past argon2id
   */
  requestFingerprints: DerivedMac;
  /**
   * the same key under SHARDGATE_JWT_SECRET_ACCEPTED (key rotation), never used to make a
   * fingerprint: a key stored by an instance on the other side of a rolling secret change still
   * matches its retry here (the stored fingerprint, and a registration's key, were made under it)
   */
  acceptedRequestFingerprints?: DerivedMac;
  /**
   * The body the runtime already read for this request (Node: entry/pre-read-body.ts), or
   * undefined: then the app reads it through the Fetch API with Hono's body limit.
   */
  preReadBody?: (c: Context<AppEnv>) => PreReadBody | undefined;
  /**
   * Request header `name` as the Fetch API's `Headers.get` answers it, read by the runtime
   * without building a Headers object (Node: entry/incoming-header.ts); left out, the app asks
   * `c.req.header()`. Read it through http/request-header.ts.
   */
  requestHeader?: (c: Context<AppEnv>, name: string) => string | undefined;
  /**
   * True once this request's answer can no longer be delivered: its connection was closed or
   * half-closed by the peer (Node: entry/caller-gone.ts). A write route's data access asks it
   * before the write begins and before its COMMIT (routes/caller-bound-writes.ts; `atCommit`
   * for that last one). Left out: a caller is never taken for gone.
   */
  callerGone?: (c: Context<AppEnv>, atCommit?: boolean) => boolean;
  /**
   * The writes that passed their last directory check and have not finished
   * (routing/writes-in-flight.ts): the instance reports a config revision only once those it
   * refuses have. Left out (tests, a runtime that reports no revision): writes are checked, not held.
   */
  writesInFlight?: WritesInFlight;
  /**
   * Swagger UI's files for `/docs` (routes/docs-page.ts; Node: entry/swagger-ui-files.ts, from
   * the swagger-ui-dist package). Left out: the page loads them from jsDelivr.
   */
  docsAssets?: DocsAssets;
}

export type AppEnv = {
  Variables: {
    services: Services;
    requestId: string;
    /** set by the /v1 tenant middleware (src/routes/v1-context.ts) on every /v1 request */
    tenant: TenantRef;
    tenantStatus: TenantEntry['status'];
    /** set by the /v1 tenant middleware on reads carrying a valid `X-Consistency-Token` */
    readPosition: ReplicationPosition | undefined;
    /**
     * set by the /v1 tenant middleware when a valid Bearer token of the tenant is sent; routes
     * that need one have `requireMember`, which refuses a request without it
     */
    principal: Principal;
    /** this answer's headers until it is built (http/response-headers.ts) */
    responseHeaders: Record<string, string>;
  };
};
