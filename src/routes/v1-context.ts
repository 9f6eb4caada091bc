/**
 * Middleware of the library API (`/v1/*`), runtime-neutral:
 * - `tenantContext` (every /v1 request): resolves `X-Tenant-ID` in the live directory (400 / 404
 *   / 403 suspended; 503 `config_not_loaded` instead of 404 before the instance's first read of
 *   etcd), sets `X-Shard`, and on reads verifies `X-Consistency-Token` (400
 *   `invalid_consistency_token` when forged or malformed; one of another tenant, or of another
 *   shard than the tenant's, is no floor for the read: see below).
 *   A Bearer token, where one is sent, is verified on every /v1 route, public ones included:
 *   401 when it is malformed, forged or expired, 403 when it was issued for another tenant
 *   (CONTRACT.md §6: a token is valid only with its own `X-Tenant-ID`) — except on login and
 *   registration, which ignore it (IGNORES_TOKEN).
 * - `requireWritable` (write routes): 423 for a `readonly` tenant.
 * - `requireMember` (Bearer routes): 401 without a member token; the token itself was verified
 *   by `tenantContext`. The member row (exists, password version) is checked by the domain:
 *   inside the transaction of a write, on the master before a read (domain/member-access.ts).
 * Every /v1 answer carries `Cache-Control: no-store` (set first, so refusals carry it too).
 */
import type { OpenAPIHono, RouteConfig, RouteHandler } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';
import type { AppEnv } from '../app-env.js';
import type { Principal } from '../domain/member-tokens.js';
import { bearerChallenge } from '../http/bearer-challenge.js';
import { ProblemError } from '../http/problem.js';
import { REPEATED_HEADER } from '../http/repeated-header.js';
import { requestHeader } from '../http/request-header.js';
import { setHeader } from '../http/response-headers.js';
import { resolveTenant, TENANT_HEADER, writeRefusal } from '../routing/tenant-directory.js';
import { callerBoundWrites } from './caller-bound-writes.js';
import { directoryBoundWrites, directoryProblem } from './directory-bound-writes.js';
import { idempotentWrite } from './idempotency.js';
import { noBody } from './no-body.js';
import { CONSISTENCY_HEADER } from './outcome-headers.js';
import { noQuery, urlValidator } from './url-validator.js';
import { documentV1Responses, READS_BY_POST } from './v1-response-docs.js';

/**
 * Routes that need no member and ignore a Bearer token: a client that keeps an expired or
 * foreign token in its default headers must still be able to log in (or register) for a new one.
 */
const IGNORES_TOKEN = new Set(['POST /v1/auth/login', 'POST /v1/members']);

/** 503 of an instance that has not read its config from etcd yet (/health/ready says so too) */
function configNotLoaded(): ProblemError {
  return new ProblemError({
    status: 503,
    code: 'config_not_loaded',
    title: 'Not ready',
    detail:
      'this instance has not read the tenant directory from etcd yet; retry (another instance may answer)',
    headers: { 'Retry-After': '1' },
  });
}

/** whether a route of the API serves this method and path (app.ts answers the others) */
const routed = (c: Context<AppEnv>) => matchedRoutes(c).some((r) => r.method !== 'ALL');

export const tenantContext: MiddlewareHandler<AppEnv> = async (c, next) => {
  // no /v1 answer is for a browser or a shared cache to keep: one URL answers per tenant
  // (`X-Tenant-ID`), per member (a Bearer token) and per read floor (a consistency token), and
  // a kept copy could be older than the caller's own write. Refusals included (a 404 is
  // cacheable by default, RFC 9111 §4.2.2)
  setHeader(c, 'Cache-Control', 'no-store');
  const { config, consistencyTokens } = c.get('services');
  const lookup = resolveTenant(config.current(), requestHeader(c, TENANT_HEADER));
  if (!lookup.ok) {
    // no route for this method and path: its 404 or 405 (app.ts) says more than the tenant's
    // refusal would. Looked at only on a refusal, so a request with a good tenant pays nothing
    if (!routed(c)) return next();
    // before its first read of etcd (just started, or etcd unreachable since), an instance knows
    // no tenant: "does not exist" would be false (an outside check got 404 tenant_not_found from a
    // restarted instance for its first ~40 ms). Looked at only on a refusal: no cost when served
    if (lookup.refusal.status === 404 && !config.status().loaded) throw configNotLoaded();
    const { status, code, detail, field, shardId } = lookup.refusal;
    if (shardId !== undefined) setHeader(c, 'X-Shard', shardId);
    throw new ProblemError({
      status,
      code,
      title: status === 400 ? 'Invalid request' : 'Tenant not available',
      detail,
      extra: field ? { errors: [{ field: field.name, message: field.message }] } : undefined,
    });
  }
  const tenant = lookup.tenant;
  c.set('tenant', tenant);
  c.set('tenantStatus', lookup.status);
  setHeader(c, 'X-Shard', tenant.shardId);
  const authorization = requestHeader(c, 'Authorization');
  const raw = requestHeader(c, CONSISTENCY_HEADER);
  // the path's 404, 405 or OPTIONS 204 (app.ts) comes before what the credentials say, as it does
  // before the tenant's refusal: a client with an expired token that mistypes a path is told of
  // the path, not to log in again (an outside check got 401 for `GET /v1/nope`)
  if ((authorization || raw) && !routed(c)) return next();
  if (authorization && !IGNORES_TOKEN.has(`${c.req.method} ${c.req.path}`))
    c.set('principal', await authenticate(c, authorization));
  c.set('readPosition', undefined);
  // an empty header is no token: a client's "last token" before its first write
  if (raw && (c.req.method === 'GET' || c.req.method === 'HEAD')) {
    const verdict = raw.includes(',')
      ? ({ ok: false, reason: REPEATED_HEADER } as const)
      : await consistencyTokens.verify(raw, tenant.id);
    if (!verdict.ok) {
      throw new ProblemError({
        status: 400,
        code: 'invalid_consistency_token',
        title: 'Invalid consistency token',
        detail: `header.${CONSISTENCY_HEADER}: ${verdict.reason}`,
        extra: { errors: [{ field: `header.${CONSISTENCY_HEADER}`, message: verdict.reason }] },
      });
    }
    // A token of another tenant (v2 tokens name theirs) is no floor: the read goes on as without
    // one, and its answer says nothing of that tenant. A token of another shard names a position
    // of that shard, which says nothing here. The tenant moved since (`shardgate-ctl tenants move`
    // switches only once the new shard's replicas hold every row the old one had), or it is a v1
    // token of another tenant: either way every replica of this shard serves what the token asked
    // for, so the read needs no floor.
    if (verdict.position?.shardId === tenant.shardId) c.set('readPosition', verdict.position);
  }
  await next();
};

export const requireWritable: MiddlewareHandler<AppEnv> = async (c, next) => {
  const id = c.get('tenant').id;
  const refusal = writeRefusal(id, c.get('tenantStatus'), c.get('services').config.current().moving.get(id));
  if (refusal) throw directoryProblem(refusal);
  await next();
};

/** the scheme name is case-insensitive (RFC 9110 §11.1): `bearer` and `BEARER` work too */
const BEARER = /^Bearer +(\S.*)$/i;
/** a member token's shape: three dot-separated base64url parts (a JWS in compact form) */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

function unauthorized(code: string, detail: string): ProblemError {
  return new ProblemError({
    status: 401,
    code,
    title: 'Unauthorized',
    detail,
    headers: { 'WWW-Authenticate': bearerChallenge(code) },
  });
}

/** The member an `Authorization` header names, for the request's tenant; throws 401 / 403. */
async function authenticate(c: Context<AppEnv>, header: string): Promise<Principal> {
  const memberTokens = c.get('services').memberTokens;
  const credentials = BEARER.exec(header)?.[1];
  if (credentials === undefined || !JWT_SHAPE.test(credentials)) {
    // a Bearer credential of the wrong shape is refused by the verifier too, so it is counted
    // with every other refused token (auth_token_refusals_total{reason="malformed"}); another
    // scheme, or none, carries no token to refuse
    if (credentials !== undefined) await memberTokens.verify(credentials);
    // say which part is wrong: the scheme, or the token after it
    const detail = header.includes(',')
      ? `header.Authorization: ${REPEATED_HEADER}`
      : credentials !== undefined
        ? 'header.Authorization: the token after "Bearer " is not a member token (a JWT: three dot-separated parts)'
        : 'header.Authorization: must be "Bearer " followed by the member token from /v1/auth/login';
    throw unauthorized('invalid_token', detail);
  }
  const check = await memberTokens.verify(credentials);
  if (!check.ok) throw unauthorized('invalid_token', 'the member token is invalid or expired');
  if (check.principal.tenantId !== c.get('tenant').id) {
    throw new ProblemError({
      status: 403,
      code: 'tenant_mismatch',
      title: 'Forbidden',
      detail: `the token was issued for another tenant than "${c.get('tenant').id}"`,
    });
  }
  return check.principal;
}

/** Bearer routes: `tenantContext` verified the token if one was sent; here one must have been. */
export const requireMember: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!requestHeader(c, 'Authorization'))
    throw unauthorized('unauthorized', 'a Bearer member token is required');
  await next();
};

/** Installs `tenantContext` on `/v1/*` and the Bearer scheme; call before registering /v1 routes. */
export function registerV1Context(app: OpenAPIHono<AppEnv>): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
  });
  app.use('/v1/*', tenantContext);
}

/**
 * `app.openapi(route, handler)` for a /v1 route. The OpenAPI document shows the route as given,
 * tenant header included. At run time:
 * - the headers are not validated again per route, because `tenantContext` (installed on /v1/*
 *   before every route) already did, with the same 400 problem naming `header.X-Tenant-ID`. The
 *   second validation copied every header into an object and parsed it on each request, ~4 % of
 *   a cached read's CPU. Handlers never read `c.req.valid('header')`;
 * - path parameters and the query are validated by `urlValidator`, after the route's own
 *   middleware as zod-openapi would, with the same 400 problem, but without reading a header;
 * - the body stays with zod-openapi.
 */
export function openapiV1<R extends RouteConfig>(
  app: OpenAPIHono<AppEnv>,
  route: R,
  handler: RouteHandler<R, AppEnv>,
): void {
  const own = route.middleware === undefined ? [] : [route.middleware].flat();
  // the problem codes it lists follow from the checks it makes
  const kind = { member: own.includes(requireMember), writable: own.includes(requireWritable) };
  const { middleware: _middleware, hide: _hide, ...documented } = documentV1Responses(route, kind);
  app.openAPIRegistry.registerPath(documented);
  const { headers: _checkedByTenantContext, params, query, ...request } = route.request ?? {};
  const write = route.method !== 'get' && !READS_BY_POST.has(`${route.method} ${route.path}`);
  const middleware = [
    ...own,
    // a route without query parameters refuses any, like the list routes refuse unknown ones:
    // where it has path parameters, in the same middleware
    ...(params ? [urlValidator('param', params, { refuseQuery: !query })] : []),
    ...(query ? [urlValidator('query', query)] : params ? [] : [noQuery]),
    // a write without a body schema takes none: one sent is refused, not ignored
    ...(write && !request.body ? [noBody] : []),
    // a request refused above (401, 403, 423, 400) claims no key; a write commits only while
    // the tenant's entry still admits it (a move may have begun since); then a write whose
    // caller has gone is not begun (the key's own bookkeeping, done by idempotentWrite, still is)
    ...(write ? [directoryBoundWrites, idempotentWrite, callerBoundWrites] : []),
  ];
  app.openapi({ ...route, request, middleware, hide: true } as R, handler);
}
