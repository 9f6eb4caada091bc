/**
 * `documentV1Responses(route)`: the OpenAPI view of what every /v1 operation answers beyond its
 * own responses, added in one place (`openapiV1`) instead of on each route:
 * - the problem codes of each error status: the route names its own (`problems(…)`, schemas.ts),
 *   the codes of its kind are added here (`codesOfKind`: the tenant, a token where one is looked
 *   at, a GET's consistency token, a body, a member route, a write's directory check and
 *   Idempotency-Key, the dependencies, the Node entry's 408 and 431), each status's response
 *   listing them as the `enum` of `code` and with their meanings (routes/problem-codes.ts);
 * - the headers of every answer (http/common-response-headers.ts) and of every /v1 answer
 *   (`X-Shard`, `Cache-Control: no-store`, v1-context.ts);
 * - the headers of the outcome (outcome-headers.ts): a read's `X-Read-From` (and `X-Cache`
 *   through the read cache), a write's `X-Consistency-Token`, on the 2xx and on every status a
 *   domain Failure answers with, since they are set before the Failure is thrown (a login
 *   answers like a read); `Idempotent-Replayed` on a write's 2xx;
 * - `WWW-Authenticate` on 401 and `Retry-After` on 423, 429, 503 and a write's 409;
 * - the `X-Consistency-Token` request header on every GET, `Idempotency-Key` on every write;
 * - on a write that takes no body, that it takes none (routes/no-body.ts).
 * Documentation only: nothing here runs per request.
 */
import { type RouteConfig, z } from '@hono/zod-openapi';
import { COMMON_RESPONSE_HEADERS } from '../http/common-response-headers.js';
import { MAX_TOKEN_LENGTH } from '../routing/consistency-token.js';
import { CACHE_HEADER, CONSISTENCY_HEADER, FAILURE_STATUSES, READ_FROM_HEADER } from './outcome-headers.js';
import { PROBLEM_CODES, type ProblemCode } from './problem-codes.js';
import { PROBLEM_CODES_OF, type ProblemResponse, problemResponse } from './schemas.js';

type Header = { description: string; schema: { type: 'string'; enum?: string[] } } | { $ref: string };

const text = (description: string, values?: string[]): Header => ({
  description,
  schema: values ? { type: 'string', enum: values } : { type: 'string' },
});

const EVERY = {
  ...COMMON_RESPONSE_HEADERS,
  'X-Shard': text('the tenant’s shard (absent when the tenant is unknown or its header invalid)'),
  'Cache-Control': text('no /v1 answer is to be kept by a browser or a shared cache', ['no-store']),
  // cors.ts: only with `cors/allowed_origins` set
  Vary: text('`Origin` while `cors/allowed_origins` lists origins other than `*`'),
  'Access-Control-Allow-Origin': text(
    'the request’s `Origin` when `cors/allowed_origins` lists it (`*` when that is `*`), errors included',
  ),
  'Access-Control-Expose-Headers': text('the response headers a script of a listed origin may read'),
};
const READ_FROM = {
  [READ_FROM_HEADER]: text(
    'where the data was read (on a cache HIT: where the entry was read); also on a refusal the read decided (a record not found, a revoked token, wrong credentials)',
    ['replica', 'master'],
  ),
};
const CACHED_READ = {
  ...READ_FROM,
  [CACHE_HEADER]: text(
    'where the read cache applies (book reads, /v1/members/me); also on a refusal the read decided',
    ['HIT', 'MISS', 'BYPASS'],
  ),
};
const WRITE = {
  [CONSISTENCY_HEADER]: text(
    'opaque; sent back on a later read (to any instance), it sees this write or newer',
  ),
  'Idempotent-Replayed': text('on the stored answer of an earlier request with the same Idempotency-Key', [
    'true',
  ]),
};
/** a write refused in its transaction (409, 404 of an id, 403 of a role, 401 of a revoked token) */
const REFUSED_WRITE = {
  [CONSISTENCY_HEADER]: text(
    'on a refusal decided in the write’s transaction: the master’s position then; a read with it sees what the refusal saw',
  ),
};
const BY_STATUS: Record<string, Record<string, Header>> = {
  '401': {
    'WWW-Authenticate': text(
      'Bearer realm="shardgate", with error="invalid_token" when the token sent is malformed, expired or revoked',
    ),
  },
  '423': {
    'Retry-After': text('while a move to another shard holds the tenant: seconds until it may be over'),
  },
  '429': {
    'Retry-After': text(
      'seconds until the account’s failure window ends; 1 while checks of the account in flight fill its budget',
    ),
  },
  '503': { 'Retry-After': text('seconds until the dependency may be tried again') },
};

/** reads without the read cache: no `X-Cache` */
const UNCACHED_READS = new Set(['get /v1/loans', 'get /v1/loans/{id}']);
/**
 * the routes that do not look at a Bearer token (registration and login act for whoever sends
 * them): no 401 of a token; a login's own 401 is its wrong credentials
 */
const TOKEN_IGNORED = new Set(['post /v1/members', 'post /v1/auth/login']);
/** a POST that only reads (a login): `X-Read-From`, no `X-Consistency-Token` */
export const READS_BY_POST: ReadonlySet<string> = new Set(['post /v1/auth/login']);

const NO_BODY = 'Takes no body: send none, or `{}`. Anything else is a 400 naming `body`.';

/** `Idempotency-Key` on every write (routes/idempotency.ts) */
const idempotencyHeader = z.object({
  // quoted, with every character escaped (`\"`, `\\`): 2 × 200 + 2
  'idempotency-key': z.string().min(1).max(402).optional().openapi({
    description:
      'makes the write happen once: 1–200 visible ASCII characters, bare or as a quoted sf-string (`"a\\"b"` is the key `a"b`), per member; a repeat with the same key and request gets the first answer again (response header `Idempotent-Replayed: true`); 409 while the first runs, 422 with another request; kept a day',
  }),
});

/** `X-Consistency-Token` as a reader sends it back */
const consistencyHeader = z.object({
  'x-consistency-token': z.string().max(MAX_TOKEN_LENGTH).optional().openapi({
    description:
      'the X-Consistency-Token of an earlier write: the read sees that write or newer (400 when forged; one of another tenant, or of another shard than the tenant’s, is no floor)',
  }),
});

/**
 * The outcome's headers on the response of `status`: on a 2xx, and on a status a domain Failure
 * answers with (they are set before it is thrown: outcome-headers.ts). `readHeaders` for a read,
 * undefined for a write.
 */
function outcomeHeaders(status: string, readHeaders: Record<string, Header> | undefined) {
  if (status.startsWith('2')) return readHeaders ?? WRITE;
  if (!FAILURE_STATUSES.has(status)) return {};
  return readHeaders ?? REFUSED_WRITE;
}

/** what a /v1 route's own middleware checks (v1-context.ts `openapiV1`) */
export interface V1RouteKind {
  /** `requireMember`: a Bearer member token is needed, and its member's row decides */
  member: boolean;
  /** `requireWritable`: refused while the tenant is read-only */
  writable: boolean;
}

/**
 * The problem codes a /v1 route answers by its kind, whatever the route does (its own codes are
 * its `problems(…)`): the order of a request's checks, v1-context.ts, app.ts and the write
 * middleware of `openapiV1`.
 */
function codesOfKind(route: RouteConfig, { member, writable }: V1RouteKind): ProblemCode[] {
  const op = `${route.method} ${route.path}`;
  const get = route.method === 'get';
  const write = !get && !READS_BY_POST.has(op);
  const codes: (ProblemCode | false)[] = [
    // tenantContext: the X-Tenant-ID header, the tenant; a Bearer token where one is looked at;
    // a GET's consistency token
    'validation_failed',
    'tenant_not_found',
    'tenant_suspended',
    !TOKEN_IGNORED.has(op) && 'invalid_token',
    !TOKEN_IGNORED.has(op) && 'tenant_mismatch',
    get && 'invalid_consistency_token',
    // app.ts, on every method but GET: a write from another site, then the body (its size, its
    // type and encoding, UTF-8)
    !get && 'origin_not_allowed',
    !get && 'payload_too_large',
    !get && 'unsupported_media_type',
    !get && 'bad_request',
    // requireMember, then the member's row (domain/member-access.ts)
    member && 'unauthorized',
    member && 'token_revoked',
    // requireWritable; directoryBoundWrites before the COMMIT; idempotentWrite; a write on the master
    (writable || write) && 'tenant_readonly',
    write && 'tenant_moved',
    write && 'idempotency_key_in_progress',
    write && 'idempotency_key_answer_lost',
    write && 'idempotency_key_reused',
    write && 'write_contended',
    write && 'write_outcome_unknown',
    // the tenant directory not read yet; a database node or Redis (http/dependency-problem.ts)
    'config_not_loaded',
    'dependency_unavailable',
    'dependency_busy',
    'instance_out_of_resources',
    'dependency_out_of_resources',
    // the Node entry, before any route
    'request_timeout',
    'headers_too_large',
  ];
  return codes.filter((code): code is ProblemCode => code !== false);
}

/**
 * The error responses of a route: its own codes (`problems(…)` among its responses) and those of
 * its kind, by status; the route's own first, each once.
 */
function problemResponses(route: RouteConfig, kind: V1RouteKind): Record<string, ProblemResponse> {
  const byStatus = new Map<number, (readonly [ProblemCode, string | undefined])[]>();
  const add = (code: ProblemCode, note: string | undefined) => {
    const status = PROBLEM_CODES[code].status;
    const codes = byStatus.get(status) ?? [];
    if (!codes.some(([known]) => known === code)) codes.push([code, note]);
    byStatus.set(status, codes);
  };
  for (const response of Object.values(route.responses))
    for (const [code, note] of (response as Partial<ProblemResponse>)[PROBLEM_CODES_OF] ?? [])
      add(code, note);
  for (const code of codesOfKind(route, kind)) add(code, undefined);
  return Object.fromEntries([...byStatus].map(([status, codes]) => [status, problemResponse(codes)]));
}

export function documentV1Responses<R extends RouteConfig>(route: R, kind: V1RouteKind): R {
  const op = `${route.method} ${route.path}`;
  const read = route.method === 'get' || READS_BY_POST.has(op);
  const readHeaders = UNCACHED_READS.has(op) || READS_BY_POST.has(op) ? READ_FROM : CACHED_READ;
  const own = Object.entries(route.responses).filter(([, r]) => !(PROBLEM_CODES_OF in r));
  const all: RouteConfig['responses'] = { ...Object.fromEntries(own), ...problemResponses(route, kind) };
  const responses: RouteConfig['responses'] = {};
  for (const [status, response] of Object.entries(all)) {
    const outcome = outcomeHeaders(status, read ? readHeaders : undefined);
    const { [PROBLEM_CODES_OF]: _codes, ...documented } = response as Partial<ProblemResponse>;
    responses[status] =
      'description' in response
        ? {
            ...(documented as typeof response),
            headers: {
              ...((response as { headers?: Record<string, Header> }).headers ?? {}),
              ...EVERY,
              ...outcome,
              ...BY_STATUS[status],
              // a write's key still in use (idempotency.ts)
              ...(status === '409' && !read
                ? {
                    'Retry-After': text(
                      'with `idempotency_key_in_progress`: seconds until the key’s answer may be there',
                    ),
                  }
                : {}),
            },
          }
        : response;
  }
  // a GET takes a consistency token, a write an idempotency key; documented beside the route's
  // own headers
  const headers = route.request?.headers;
  const extra = route.method === 'get' ? consistencyHeader : read ? undefined : idempotencyHeader;
  const request =
    extra && headers instanceof z.ZodObject
      ? { ...route.request, headers: headers.extend(extra.shape) }
      : route.request;
  const description =
    !read && !route.request?.body
      ? [route.description, NO_BODY].filter(Boolean).join('\n\n')
      : route.description;
  return { ...route, request, responses, ...(description ? { description } : {}) };
}
