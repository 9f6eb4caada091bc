/**
 * The ONE HAProxy config of shardgate, rendered for the local stack (`.stack/haproxy.cfg`) and for
 * docker (`docker/haproxy/haproxy.cfg`, checked by a test to equal a fresh render).
 *
 * - frontend :8080 → backend `api`, weighted roundrobin; server names are instance ids so
 *   `set server api/<id> weight N` (shardgate-ctl lb sync) addresses them;
 * - while backend `api` has no usable server, the frontend uses `api_fallback`: the same servers,
 *   agent-check and weights, a 2 s check out on its first failure (fail-open; haproxy-runtime.ts
 *   fallbackBackend says why);
 * - health: `option httpchk GET /health/ready`, `check inter 1s fall 2 rise 2`, `slowstart`,
 *   and each instance's agent-check (drain while it shuts down);
 * - `retries 2` + `option redispatch` + `retry-on conn-failure empty-response response-timeout`:
 *   a refused connect, a connection closed before any response byte, or no answer within
 *   `RESENDABLE_SERVER_TIMEOUT_SECONDS` is retried. With `roundrobin` and another server up,
 *   HAProxy 2.6 sends each retry to another server; with tenant affinity (a hash) only the last
 *   retry goes elsewhere. So a killed instance costs GETs no error, and a frozen one (SIGSTOP, a
 *   stalled event loop) costs the reads sent to it 10 s, not a 504 after `timeout server`.
 *   HAProxy itself would replay any method; a write whose server died after its commit must not
 *   run twice (a second loan, a second email), so only the `resendable` requests are sent again:
 *   GET/HEAD/OPTIONS, and writes that carry an `Idempotency-Key`, which the API does once per
 *   key whichever instance gets them (src/routes/idempotency.ts: a repeat gets the first answer,
 *   409 while the first still runs, or 409 `idempotency_key_answer_lost`). A try HAProxy gave up
 *   on is rolled back before its COMMIT (its caller is gone, routes/caller-bound-writes.ts)
 *   unless it had committed. An empty or malformed key is a 400 from any instance, so sending it
 *   again writes nothing either. A login (a POST that reads) ignores the key: sent again it
 *   writes nothing, and the lost try counts against the login throttle as one in flight would.
 *   Other writes keep `timeout server` (30 s) and are never sent again once sent (a connect
 *   failure is retried for every method: nothing was sent). A read's own bounds with the default
 *   settings are well under 10 s (a database call 2 s, a Redis call 250 ms, the wait for a
 *   replica 200 ms); a request that really takes longer (`call_timeout_ms` raised past it) is
 *   tried up to three times and gets the 504 within 30 s, as `timeout server` would have given
 *   it: a read, or a keyed write none of whose tries committed;
 * - keep-alive to the API: `http-reuse safe`; the API's keepAliveTimeout (65 s) is above
 *   HAProxy's idle reuse window, so HAProxy never reuses a connection Node just closed;
 * - keep-alive to clients: HAProxy closes an idle client connection after
 *   `CLIENT_KEEP_ALIVE_SECONDS` and says so in `Keep-Alive: timeout=…`, replacing the API's
 *   `timeout=65`. A client that trusted the API's 65 s (Node's fetch does) would send its next
 *   request on a connection HAProxy had already closed, and fail with "other side closed";
 * - stats + Prometheus exporter on :8404, runtime API socket at `level admin`;
 * - HAProxy's own error answers are problem+json (CONTRACT.md §6), see `HAPROXY_PROBLEMS`.
 *   requestId: the frontend gives every request an id — the caller's `X-Request-Id` when it is
 *   one the API keeps (same pattern as src/app.ts), else a fresh UUID (`unique-id-format`) — and
 *   forwards it as `X-Request-Id`, so the id in a 502/504 body is the one the API instance logged.
 *   Only that validated value goes into the JSON (a raw header there could break out of it).
 *   Errors raised before the frontend's rules run answer `"requestId":""`.
 *   Limit (HAProxy 2.6): errors its HTTP/1 parser answers before a request exists — malformed
 *   syntax, more than `tune.http.maxhdr` (101) header lines, headers over `tune.bufsize` minus
 *   `tune.maxrewrite`, headers not complete within `timeout http-request` — always get the
 *   built-in HTML page; `errorfile`/`http-error` are not consulted there (checked on 2.6.12;
 *   haproxy/haproxy#3032, fixed upstream on the 3.2 branch). Hence `tune.bufsize 32768` (twice
 *   the memory per buffer in use; idle connections hold none): headers up to ~31 KB reach the
 *   API instance, whose own limit (16 KB) answers 431 problem+json (src/entry/client-error.ts);
 * - a request whose `Content-Length` is above the API's BODY_LIMIT_BYTES is forwarded at once,
 *   not held by `wait-for-body`: the instance answers it 413 (or 404 for an unknown tenant) on
 *   its headers and reads the rest of the body so the answer is not lost to a reset. Before, one
 *   sent slowly was held until its 10 s were up and answered 408 (an outside check, 200 KB
 *   declared at 2 KB/s). HAProxy answering the 413 itself closed the connection under a body
 *   still coming in, and lost answers to the reset (test/bad-input.test.ts). `hdr_val` reads a
 *   32-bit integer, so a length of 2^31 or more wraps: a length with more digits than the limit
 *   has is matched as text too (a review: 2147483648 still got the 408);
 * - `http-request wait-for-body`: a request body must arrive within `REQUEST_TIMEOUT_SECONDS`
 *   before the request is forwarded, so a client that sends a truncated body gets 408 at once
 *   instead of 504 after `timeout server` (an instance's connection held meanwhile). Bodies that
 *   fit the buffer arrive with their headers in practice, so normal POSTs do not wait (measured:
 *   no throughput difference). `at-least BODY_LIMIT_BYTES + 1`: a body without a declared length
 *   (chunked) is forwarded as soon as it is past the API's limit, and the instance answers 413 then;
 *   before, one whose end came after 10 s waited for it or a full buffer (~31 KB) and got 408 (an
 *   outside check: 18 KB chunked at 2 KB/s). One that has not passed the limit within the 10 s
 *   still gets 408.
 * Optional tenant affinity (`tenantAffinity: true`): balance by `hdr(X-Tenant-ID)` with
 * `hash-type consistent`; requests without the header get 400 instead of round-robin.
 * Optional limit on the credential routes (`credentialRatePerMinute` > 0): the POSTs that check
 * or set a password (`/v1/auth/login`, `/v1/auth/change-password`, `/v1/members`) from one source
 * address, counted over a sliding minute in a stick table (`http_req_rate(60s)`, every tracked
 * request counted, refused ones too, so a client that keeps trying stays refused until it pauses);
 * above the limit, 429 problem+json with `Retry-After: 60`. It caps password guessing across many
 * accounts from one address, which the API's per-account throttle does not see. The address is
 * HAProxy's view of the client: behind another proxy or a NAT every client shares one bucket, so
 * the limit must be set for that (or left off). Off in the local stack (tests and benchmarks all
 * come from 127.0.0.1; SHARDGATE_LB_CREDENTIAL_RATE turns it on), on in compose.
 */
import { basename } from 'node:path';
import { fallbackBackend } from '../control-plane/lb/haproxy-runtime.js';
import { IDEMPOTENCY_HEADER } from '../src/domain/idempotency.js';
import { BODY_LIMIT_BYTES } from '../src/http/body-limit.js';
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '../src/http/cors.js';
import { topology } from './topology.js';

/** the fallback backend's `timeout check` (control-plane/lb/haproxy-runtime.ts fallbackBackend) */
export const FALLBACK_CHECK_TIMEOUT_SECONDS = 2;

/** the stick table of the credential-route limit */
const CREDENTIAL_TABLE = 'credential_rate';
/** compose's limit of credential POSTs per source address and minute (10 a second) */
export const DOCKER_CREDENTIAL_RATE_PER_MINUTE = 600;

/** how long HAProxy keeps an idle client connection, and what it tells clients */
export const CLIENT_KEEP_ALIVE_SECONDS = 10;
/** `timeout http-request` (headers) and `wait-for-body` (body): each must arrive within this */
export const REQUEST_TIMEOUT_SECONDS = 10;
/** `timeout server`: an instance that has not answered by then gets the request a 504 */
export const SERVER_TIMEOUT_SECONDS = 30;
/**
 * `timeout server` of a request HAProxy may send again (a GET/HEAD/OPTIONS, or a write with an
 * `Idempotency-Key`), which is then retried (`retry-on response-timeout`): its three tries
 * together take as long as `SERVER_TIMEOUT_SECONDS`, the 504's "within 30 s"
 */
export const RESENDABLE_SERVER_TIMEOUT_SECONDS = SERVER_TIMEOUT_SECONDS / 3;
/** the `X-Request-Id` values the API keeps (src/app.ts REQUEST_ID_PATTERN); JSON-safe by construction */
const REQUEST_ID_REGEX = '^[A-Za-z0-9._:-]{1,128}$';
/** where a problem body takes the request id (log-format; the var only ever holds a validated id) */
const REQUEST_ID_FORMAT = '%[var(txn.request_id)]';

export interface HaproxyProblem {
  status: number;
  code: string;
  title: string;
  detail: string;
  /** whole seconds; sent as `Retry-After` */
  retryAfter?: number;
}

/**
 * The errors HAProxy answers itself (`http-error` in defaults: every proxy inherits them), as
 * problem+json with the codes the API uses where it has one (413, 500). 413/429 are not produced
 * by this config today; they cover a future `deny_status` or rate limit.
 */
export const HAPROXY_PROBLEMS: readonly HaproxyProblem[] = [
  {
    status: 400,
    code: 'bad_request',
    title: 'Bad request',
    detail: 'The load balancer could not process the request.',
  },
  { status: 403, code: 'forbidden', title: 'Forbidden', detail: 'The load balancer refused the request.' },
  {
    status: 408,
    code: 'request_timeout',
    title: 'Request timeout',
    detail: `The request was not received completely within ${REQUEST_TIMEOUT_SECONDS} s.`,
  },
  { status: 413, code: 'payload_too_large', title: 'Payload too large', detail: 'The request is too large.' },
  {
    status: 429,
    code: 'too_many_requests',
    title: 'Too many requests',
    detail: 'Too many requests; retry later.',
    retryAfter: 1,
  },
  {
    status: 500,
    code: 'internal_error',
    title: 'Internal server error',
    detail: 'The load balancer failed.',
  },
  {
    status: 501,
    code: 'not_implemented',
    title: 'Not implemented',
    detail: 'The request uses an HTTP feature the load balancer does not support.',
  },
  {
    status: 502,
    code: 'bad_gateway',
    title: 'Bad gateway',
    detail:
      'An API instance gave no valid answer; a write may still have been applied: retry it with the same Idempotency-Key.',
  },
  {
    status: 503,
    code: 'service_unavailable',
    title: 'Service unavailable',
    detail: 'No API instance is available to take the request; retry shortly.',
    retryAfter: 1,
  },
  {
    status: 504,
    code: 'gateway_timeout',
    title: 'Gateway timeout',
    detail: `No API instance answered within ${SERVER_TIMEOUT_SECONDS} s; a write may still have been applied: retry it with the same Idempotency-Key.`,
  },
];

/**
 * `content-type … lf-string '<json>' [hdr Retry-After N]` for one problem: the JSON of
 * CONTRACT.md §6 with requestId from the log-format variable. The text goes inside single quotes
 * and is a log-format string, so it must hold no `'` and no `%` of its own.
 */
export function problemReply(p: HaproxyProblem): string {
  const json = JSON.stringify({
    type: `https://shardgate.dev/problems/${p.code}`,
    title: p.title,
    status: p.status,
    detail: p.detail,
    code: p.code,
    requestId: '@REQUEST_ID@',
  });
  if (/['%\\]/.test(json)) throw new Error(`HAProxy problem ${p.status}: no ' % or \\ allowed in ${json}`);
  const body = json.replace('@REQUEST_ID@', REQUEST_ID_FORMAT);
  const retryAfter = p.retryAfter === undefined ? '' : ` hdr Retry-After ${p.retryAfter}`;
  // the id in the header too, `nosniff` and `no-store`, as the API's own answers carry them
  return `content-type application/problem+json lf-string '${body}'${retryAfter} hdr X-Request-Id ${REQUEST_ID_FORMAT} hdr X-Content-Type-Options nosniff hdr Cache-Control no-store`;
}

/**
 * The name of the map file of CORS origins: the renderer's `corsMapFile` must be named so, and
 * `lb sync` finds the map in HAProxy's `show map` by it.
 */
export const CORS_MAP_FILE = 'cors-origins.map';
/** the content a fresh map file starts with; lb sync fills the map in HAProxy's memory */
export const CORS_MAP_SEED = `# Filled at run time by shardgate-ctl lb sync from cors/allowed_origins; do not edit.\n`;

/**
 * CORS headers on HAProxy's own answers (a 503 with no instance up, 504, 502, the 408 of a body
 * that never arrives, the credential limit's 429, tenant affinity's 400), as the API gives its own
 * (src/http/cors.ts): without them a browser script sees a network error instead of a
 * problem+json and `Retry-After`.
 *
 * The map `corsMapFile` holds each origin of `cors/allowed_origins` as key and value (`*` alone for
 * every origin); `lb sync` replaces its content in HAProxy's memory, atomically (prepare, add,
 * commit), whenever the key changes and after HAProxy restarts; HAProxy starts with the file's
 * (empty) content. Only the listed value goes into the header, never the request's own text. The
 * origin is looked up when the request's headers arrive; a request with more than one `Origin`
 * gets none (as from the API).
 *
 * Only answers without `X-Served-By` get them: every answer of an API instance names the instance,
 * and for those the instance alone decides (its config is authoritative; a map left stale by an
 * lb sync that is down must never open an API answer to an origin the instances no longer list).
 * `Vary: Origin` comes with the origin only (these answers are `no-store`). Paths as the API's:
 * `/v1` and below. Errors raised before the frontend's rules run (HAProxy's parser answers, see
 * above; a 408 for headers that never finish) carry none.
 *
 * A preflight (`OPTIONS` with `Access-Control-Request-Method`) from a listed origin while the
 * backend has no usable server is answered here, 204: a browser sends the request itself only
 * after a 2xx preflight, so without it the 503 would stay a network error for every request that
 * needs one (all with `X-Tenant-ID` or `Authorization`). It allows the method asked for (one
 * header, checked before it is copied into the answer: an ACL passes when any copy matches; any of
 * the API's: HAProxy does not know which path has which; the instances still answer 405), the
 * request headers the API reads, and is kept by the browser for
 * `NO_SERVER_PREFLIGHT_MAX_AGE_SECONDS` only; the request then gets the 503. Until the checks
 * mark the last instance DOWN (`fall 2`, about 2 s) a preflight still goes to it and gets the 503.
 */
export function corsRules(mapFile: string, backend: string): { request: string; response: string } {
  if (basename(mapFile) !== CORS_MAP_FILE)
    throw new Error(`corsMapFile must be named ${CORS_MAP_FILE}, not ${mapFile}`);
  const own = '{ var(txn.cors_origin) -m found } !{ res.hdr(X-Served-By) -m found }';
  return {
    request: `  acl cors_path path /v1
  acl cors_path path_beg /v1/
  http-request set-var(txn.cors_origin) req.fhdr(Origin),map(${mapFile}) if cors_path { req.fhdr_cnt(Origin) eq 1 }
  http-request set-var(txn.cors_origin) str(*),map(${mapFile}) if cors_path !{ var(txn.cors_origin) -m found }
  http-request return status 204 hdr Access-Control-Allow-Methods %[req.fhdr(Access-Control-Request-Method)] hdr Access-Control-Allow-Headers "${CORS_ALLOW_HEADERS}" hdr Access-Control-Max-Age ${NO_SERVER_PREFLIGHT_MAX_AGE_SECONDS} hdr Cache-Control no-store hdr X-Request-Id ${REQUEST_ID_FORMAT} if METH_OPTIONS { var(txn.cors_origin) -m found } { req.fhdr_cnt(Access-Control-Request-Method) eq 1 } { req.fhdr(Access-Control-Request-Method) -m reg ^(GET|HEAD|POST|PUT|PATCH|DELETE)$ } { nbsrv(${backend}) lt 1 }
`,
    response: `  http-after-response set-header Access-Control-Allow-Origin %[var(txn.cors_origin)] if ${own}
  http-after-response set-header Access-Control-Expose-Headers "${CORS_EXPOSE_HEADERS}" if ${own}
  http-after-response set-header Vary Origin if ${own} !{ var(txn.cors_origin) -m str * }
`,
  };
}

/** how long a browser keeps HAProxy's own preflight answer (no instance up), in seconds */
export const NO_SERVER_PREFLIGHT_MAX_AGE_SECONDS = 5;

export interface HaproxyServer {
  name: string;
  host: string;
  port: number;
  agentPort: number;
  weight: number;
}

/**
 * Name resolution at run time (compose: Docker's embedded DNS). Without it HAProxy resolves each
 * server's hostname once, at start, through libc: a recreated API container gets a new address,
 * and HAProxy keeps checking (and sending to) the old one until it restarts itself.
 */
export interface HaproxyResolver {
  /** `resolvers` section name, referenced by each server */
  name: string;
  /** `host:port` of the DNS server */
  nameserver: string;
}

/**
 * A resolution answer is kept `hold valid` while later queries fail, and re-queried every
 * `timeout resolve`. NXDOMAIN (a stopped container has no record) and the other failures keep
 * the last address for `hold nx`/`other` before the server goes to maintenance: health checks
 * already mark it down meanwhile, and it comes back with the first valid answer.
 * `init-addr last,libc,none`: the state file's address, else libc at start, else no address
 * (the server starts in maintenance), so HAProxy starts even before the API containers exist.
 */
export const RESOLVER_SERVER_OPTIONS = 'init-addr last,libc,none';

export interface HaproxyConfigOptions {
  bindHost: string;
  servers: HaproxyServer[];
  socketPath: string;
  /** resolve the servers' hostnames at run time too; absent: once, at start (local: IPs only) */
  resolver?: HaproxyResolver;
  tenantAffinity?: boolean;
  /** credential POSTs per source address and minute; 0 or absent: no limit */
  credentialRatePerMinute?: number;
  /**
   * the map file of CORS origins for HAProxy's own answers (`corsRules`), named `CORS_MAP_FILE`
   * (lb sync finds the map by that name); absent: HAProxy's own answers carry no CORS header
   */
  corsMapFile?: string;
  /** defaults: topology.haproxy.port / statsPort (tests run a second HAProxy on others) */
  port?: number;
  statsPort?: number;
}

export function renderHaproxyConfig({
  bindHost,
  servers,
  socketPath,
  tenantAffinity = false,
  credentialRatePerMinute = 0,
  port = topology.haproxy.port,
  statsPort = topology.haproxy.statsPort,
  resolver,
  corsMapFile,
}: HaproxyConfigOptions): string {
  const h = topology.haproxy;
  const resolvers = resolver
    ? `
resolvers ${resolver.name}
  nameserver dns ${resolver.nameserver}
  accepted_payload_size 8192
  resolve_retries 3
  timeout resolve 1s
  timeout retry 1s
  hold valid 10s
  hold obsolete 30s
  hold nx 30s
  hold other 30s
  hold refused 30s
  hold timeout 30s
`
    : '';
  const serverResolution = resolver ? ` resolvers ${resolver.name} ${RESOLVER_SERVER_OPTIONS}` : '';
  const backendRules = `  option httpchk GET /health/ready
  http-check expect status 200
  http-reuse safe
  acl resendable method GET HEAD OPTIONS
  acl resendable req.hdr(${IDEMPOTENCY_HEADER}) -m found
  http-request disable-l7-retry unless resendable
  http-request set-timeout server ${RESENDABLE_SERVER_TIMEOUT_SECONDS}s if resendable`;
  const balance = tenantAffinity
    ? `  balance hdr(X-Tenant-ID)
  hash-type consistent`
    : '  balance roundrobin';
  const missingTenant = problemReply({
    status: 400,
    code: 'missing_tenant',
    title: 'X-Tenant-ID required',
    detail: 'With tenant affinity on, every /v1 request needs an X-Tenant-ID header.',
  });
  const affinityGuard = tenantAffinity
    ? `  http-request return status 400 ${missingTenant} if { path_beg /v1 } !{ req.hdr(X-Tenant-ID) -m found } !{ method OPTIONS }
`
    : '';
  if (!Number.isInteger(credentialRatePerMinute) || credentialRatePerMinute < 0)
    throw new Error(`credentialRatePerMinute must be a whole number >= 0, not ${credentialRatePerMinute}`);
  const tooMany = problemReply({
    status: 429,
    code: 'too_many_credential_requests',
    title: 'Too many requests',
    detail: `More than ${credentialRatePerMinute} logins, registrations or password changes from this address within a minute; retry later.`,
    retryAfter: 60,
  });
  const credentialLimit =
    credentialRatePerMinute > 0
      ? `  acl credential_route method POST
  acl credential_route_path path /v1/auth/login /v1/auth/change-password /v1/members
  http-request track-sc1 src,ipmask(32,64) table ${CREDENTIAL_TABLE} if credential_route credential_route_path
  http-request return status 429 ${tooMany} if credential_route credential_route_path { sc1_http_req_rate(${CREDENTIAL_TABLE}) gt ${credentialRatePerMinute} }
`
      : '';
  const credentialTable =
    credentialRatePerMinute > 0
      ? `
backend ${CREDENTIAL_TABLE}
  stick-table type ipv6 size 100k expire 60s store http_req_rate(60s)
`
      : '';
  const cors = corsMapFile === undefined ? { request: '', response: '' } : corsRules(corsMapFile, h.backend);
  return `# Generated by stack/haproxy-config.ts — do not edit; edit the renderer.
global
  log stdout format raw local0 notice
  stats socket ${socketPath} mode 600 level admin expose-fd listeners
  stats timeout 30s
  maxconn 4096
  tune.bufsize 32768

defaults
  mode http
  log global
  option dontlognull
  timeout connect 2s
  timeout client 30s
  timeout server ${SERVER_TIMEOUT_SECONDS}s
  timeout http-request ${REQUEST_TIMEOUT_SECONDS}s
  timeout http-keep-alive ${CLIENT_KEEP_ALIVE_SECONDS}s
  timeout queue 5s
  option redispatch
  retries 2
  retry-on conn-failure empty-response response-timeout
${HAPROXY_PROBLEMS.map((p) => `  http-error status ${p.status} ${problemReply(p)}`).join('\n')}

frontend shardgate
  bind ${bindHost}:${port}
  option forwardfor
  unique-id-format %[uuid()]
  http-request set-var(txn.request_id) req.fhdr(X-Request-Id) if { req.fhdr(X-Request-Id) -m reg ${REQUEST_ID_REGEX} }
  http-request set-var(txn.request_id) unique-id unless { var(txn.request_id) -m found }
  http-request set-header X-Request-Id ${REQUEST_ID_FORMAT}
${cors.request}${affinityGuard}${credentialLimit}  http-request wait-for-body time ${REQUEST_TIMEOUT_SECONDS}s at-least ${BODY_LIMIT_BYTES + 1} unless { req.hdr_val(content-length) gt ${BODY_LIMIT_BYTES} } || { req.hdr(content-length) -m reg ^0*[1-9][0-9]{${String(BODY_LIMIT_BYTES).length},}$ }
  http-response set-header Keep-Alive timeout=${CLIENT_KEEP_ALIVE_SECONDS}
${cors.response}  use_backend ${fallbackBackend(h.backend)} if { nbsrv(${h.backend}) lt 1 }
  default_backend ${h.backend}

frontend stats
  bind ${bindHost}:${statsPort}
  http-request use-service prometheus-exporter if { path /metrics }
  stats enable
  stats uri /stats
  stats refresh 5s
${resolvers}
backend ${h.backend}
${balance}
${backendRules}
  default-server check inter 1s fall 2 rise 2 slowstart 3s agent-check agent-inter 1s
${servers.map((s) => `  server ${s.name} ${s.host}:${s.port} weight ${s.weight} agent-port ${s.agentPort}${serverResolution}`).join('\n')}

backend ${fallbackBackend(h.backend)}
${balance}
${backendRules}
  timeout check ${FALLBACK_CHECK_TIMEOUT_SECONDS}s
  default-server check inter 1s fall 1 rise 1 agent-check agent-inter 1s
${servers.map((s) => `  server ${s.name} ${s.host}:${s.port} weight ${s.weight} agent-port ${s.agentPort}${serverResolution}`).join('\n')}
${credentialTable}`;
}

export function localServers(): HaproxyServer[] {
  return topology.apis.map((a) => ({
    name: a.id,
    host: topology.host,
    port: a.port,
    agentPort: a.agentPort,
    weight: a.weight,
  }));
}

/** Docker's embedded DNS server, in every container of a user-defined network (compose's default) */
export const DOCKER_DNS = '127.0.0.11:53';

/**
 * docker/compose.yml service names are the instance ids, resolved by Docker's DNS at run time
 * (a recreated container has a new address); HAProxy listens on all interfaces there.
 */
export function renderDockerHaproxyConfig(): string {
  return renderHaproxyConfig({
    bindHost: '0.0.0.0',
    servers: topology.apis.map((a) => ({
      name: a.id,
      host: a.id,
      port: a.port,
      agentPort: a.agentPort,
      weight: a.weight,
    })),
    socketPath: '/var/run/haproxy/haproxy.sock',
    credentialRatePerMinute: DOCKER_CREDENTIAL_RATE_PER_MINUTE,
    resolver: { name: 'docker', nameserver: DOCKER_DNS },
    corsMapFile: `/usr/local/etc/haproxy/${CORS_MAP_FILE}`,
  });
}
