/**
 * CORS (the Fetch standard's protocol) for the origins `cors/allowed_origins` lists, read live
 * from the config in force (config/cors-origins.ts): a browser script on one of those sites may
 * call the API and read its answers and the headers a client needs (the consistency token first).
 *
 * Contract (for the library API, `/v1` and below; the health, metrics and docs paths never get
 * a CORS header, so no web page a user visits can read them, `*` or not):
 * - A request whose `Origin` is listed gets `Access-Control-Allow-Origin` (that origin) and
 *   `Access-Control-Expose-Headers` on its answer, whatever the answer (errors too, so a script
 *   can read a problem+json). With `*`, every request gets `Access-Control-Allow-Origin: *`, with
 *   an `Origin` or without (a copy cached from a request without one then serves a script too).
 *   No `Allow-Credentials`: the API takes bearer tokens, never cookies.
 * - A preflight (`OPTIONS` with `Access-Control-Request-Method`) from a listed origin to a known
 *   path is answered here, 204, before the tenant is looked at (a preflight carries no
 *   `X-Tenant-ID` or `Authorization`): `Allow` and `Access-Control-Allow-Methods` are the path's
 *   methods, `Access-Control-Allow-Headers` the request headers the API reads, and
 *   `Access-Control-Max-Age` 600 s; `Cache-Control: no-store` as on every `/v1` answer. An unknown
 *   path gets its usual 404.
 * - Any other origin, or none, gets no CORS header: the browser keeps its script from the answer.
 *   A read is served as without CORS; a write is refused (below).
 * - While origins other than `*` are listed, every `/v1` answer says `Vary: Origin`, so no cache
 *   hands one origin's answer to another.
 * - Answers given before createApp runs (the Node entry's 400/408/417/431) carry no CORS header.
 *   HAProxy gives its own answers (no `X-Served-By`) the same headers from a map `lb sync` fills
 *   (stack/haproxy-config.ts corsRules), and never touches an instance's.
 * - A write (any method but GET, HEAD and OPTIONS) whose `Origin` is neither listed nor the API's
 *   own host is refused 403 `origin_not_allowed` before anything is written
 *   (`crossOriginWriteRefusal`). A browser keeps a preflight's answer up to its max age, and
 *   sends writes on that strength without asking again: without this, an origin taken off the
 *   list could still write (not read the answers) for up to 600 s. Clients that are no browser
 *   send no `Origin` and are not affected.
 *
 * Written here rather than with `hono/cors`: that middleware answers every `OPTIONS` 204 (an
 * unknown path, a plain `OPTIONS` without a preflight's header and a refused origin's too, with no
 * `Allow`), sets `Expose-Headers` for refused origins, and writes through `c.header()`, which the
 * plain-object headers of response-headers.ts replace.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import { IDEMPOTENCY_HEADER } from '../domain/idempotency.js';
import { echoText } from './echo-text.js';
import type { ProblemInit } from './problem.js';
import { requestHeader } from './request-header.js';
import { setHeader, textBody } from './response-headers.js';

/** request headers a browser script may send (beyond the CORS-safelisted ones) */
export const CORS_ALLOW_HEADERS = [
  'Authorization',
  'Content-Type',
  'X-Tenant-ID',
  IDEMPOTENCY_HEADER,
  'X-Consistency-Token',
  'X-Request-Id',
].join(', ');
/** answer headers a browser script may read (beyond the CORS-safelisted ones) */
export const CORS_EXPOSE_HEADERS = [
  'X-Request-Id',
  'X-Served-By',
  'X-Shard',
  'X-Read-From',
  'X-Cache',
  'X-Consistency-Token',
  'Idempotent-Replayed',
  'Retry-After',
  'Allow',
  'Location',
  'WWW-Authenticate',
].join(', ');
/** how long a browser may keep a preflight's answer, in seconds */
export const CORS_MAX_AGE_SECONDS = 600;

/**
 * Sets the CORS headers of this request's answer. Returns the preflight's 204 when the request is
 * one from a listed origin to a path that `allowedOn` knows (methods non-empty), else undefined
 * (the request goes on). `allowedOn` is asked only for such a preflight.
 */
export function answerCors(
  c: Context<AppEnv>,
  allowedOrigins: readonly string[],
  allowedOn: (path: string) => readonly string[],
): Response | undefined {
  if (allowedOrigins.length === 0) return undefined;
  const path = c.req.path;
  if (path !== '/v1' && !path.startsWith('/v1/')) return undefined;
  const any = allowedOrigins.length === 1 && allowedOrigins[0] === '*';
  if (any) {
    setHeader(c, 'Access-Control-Allow-Origin', '*');
  } else {
    setHeader(c, 'Vary', 'Origin');
    const origin = requestHeader(c, 'Origin');
    if (origin === undefined || !allowedOrigins.includes(origin)) return undefined;
    setHeader(c, 'Access-Control-Allow-Origin', origin);
  }
  setHeader(c, 'Access-Control-Expose-Headers', CORS_EXPOSE_HEADERS);
  if (c.req.method !== 'OPTIONS' || requestHeader(c, 'Access-Control-Request-Method') === undefined)
    return undefined;
  const methods = allowedOn(path);
  if (methods.length === 0) return undefined;
  setHeader(c, 'Allow', methods.join(', '));
  setHeader(c, 'Access-Control-Allow-Methods', methods.join(', '));
  setHeader(c, 'Access-Control-Allow-Headers', CORS_ALLOW_HEADERS);
  setHeader(c, 'Access-Control-Max-Age', String(CORS_MAX_AGE_SECONDS));
  setHeader(c, 'Cache-Control', 'no-store');
  return textBody(c, null, 204);
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * whether `origin` names the host the request was sent to (a page of the API's own site, such as
 * /docs): the request URL's host, which the Node entry builds from `Host`. The scheme is not
 * compared: a TLS proxy in front turns https into http.
 */
function sameHost(origin: string, requestUrl: string): boolean {
  try {
    return new URL(origin).host === new URL(requestUrl).host;
  } catch {
    return false;
  }
}

/**
 * The 403 of a write from a page on an origin `cors/allowed_origins` does not list (nor `*`),
 * other than the API's own host; undefined for a read, a request without `Origin`, or an allowed
 * one. See the module comment for why the browser's own check is not enough.
 */
export function crossOriginWriteRefusal(
  c: Context<AppEnv>,
  allowedOrigins: readonly string[],
): ProblemInit | undefined {
  if (SAFE_METHODS.has(c.req.method)) return undefined;
  const origin = requestHeader(c, 'Origin');
  if (origin === undefined || allowedOrigins.includes(origin) || allowedOrigins[0] === '*') return undefined;
  if (sameHost(origin, c.req.url)) return undefined;
  return {
    status: 403,
    code: 'origin_not_allowed',
    title: 'Origin not allowed',
    detail: `a write from a page on ${echoText(origin)}: that origin is not in cors/allowed_origins`,
  };
}
