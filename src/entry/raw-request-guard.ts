/**
 * What Node's HTTP server would otherwise answer without problem+json, or pass on to Hono in a
 * form that hides it, checked on the raw request before Hono sees it:
 * - a path with a `.` or `..` segment, raw or percent-encoded (`/x/%2e%2e/metrics`), or a
 *   backslash where a slash would be (`\`): the WHATWG URL that @hono/node-server builds
 *   resolves them, so `/x/%2e%2e/metrics` was served as `/metrics`, past a frontend rule that
 *   denies `path_beg /metrics` (docs/http-api.md). Also a percent-encoded letter, digit, `-`, `.`,
 *   `_` or `~` (RFC 3986's unreserved characters, which no client needs to encode): Hono decodes
 *   the path before it routes, so `/%6detrics` was served as `/metrics` past the same rule (an
 *   outside check). Answered 400, field `path`;
 * - a request target that is neither a path nor an absolute http(s) URL (`OPTIONS *`):
 *   @hono/node-server cannot build a URL of it and answered a bare 400. Answered 400, field `path`
 *   (an absolute URL's scheme is taken in any case: `servableTarget`);
 * - an HTTP/1.1 request without `Host` (RFC 9112 §3.2): Node's own answer was a bare 400 with no
 *   body (`requireHostHeader` is turned off for this). Answered 400, field `header.Host`; so is
 *   one with two `Host` headers (the same section: Node kept the first, the app's reading joined
 *   both, and `[::1], evil.example` began like an address to the allowed-hosts check);
 * - `Expect` other than `100-continue` ('checkExpectation'): Node's own was a bare 417;
 * - a `Transfer-Encoding` other than `chunked` alone (`gzip, chunked`): Node decodes the chunks
 *   and ignores the rest, so a login whose body was declared gzip was served as plain JSON, and
 *   real gzip bytes answered 400 "not valid UTF-8" (an outside check). Answered 501 (RFC 9112
 *   §6.1), and the connection closed;
 * - `CONNECT` ('connect'): Node closed the connection without a word. Answered 405 on the raw
 *   socket, which is then closed (its bytes after the request line are not HTTP to us).
 * A Host that @hono/node-server cannot build a URL with (`x:abc`, `a b`, `[::1`) is answered by
 * `requestErrorResponse`, its `errorHandler`: 400, field `header.Host` (it answered a bare 400).
 * Every answer is problem+json with `X-Request-Id`, `nosniff` and `X-Served-By` (those on a
 * response object also `Cache-Control: no-store`). A refused path, target or Host keeps the
 * connection: the request's body is read and dropped behind the answer, within the bounds of a
 * refused large body (`lingerOrClose`), so a client still sending it gets the answer (closing at
 * once made the kernel reset the connection under the body still coming, and the reset lost 6
 * of 20 answers to 1 MB bodies sent directly in one run). An unmet `Expect` and `CONNECT` close it.
 * A refusal is seen as an app answer is (an outside check found them in no metric, and under an
 * id of their own):
 * - `X-Request-Id` is the caller's own when the app would keep it (http/request-id.ts), so the id
 *   HAProxy forwards is the one answered and logged; otherwise a fresh one;
 * - one debug line (any client can send these: the log must not be its to flood): status,
 *   reason, request id, method and the path cut to PATH_LOGGED characters without its query (a
 *   query or a header may carry a secret; no header is logged);
 * - counted in `http_request_duration_seconds` (http/request-duration.ts) as `route="unmatched"`
 *   with the method Node parsed (one of its fixed list) and the status, so the label set stays
 *   bounded whatever the path. A Host @hono/node-server refused (`requestErrorResponse`) has no
 *   request at hand (its `errorHandler` is given only the error): a fresh id, method `unknown`.
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { RequestError } from '@hono/node-server';
import { requestDurationHistogram, UNMATCHED_ROUTE } from '../http/request-duration.js';
import { requestIdOf } from '../http/request-id.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { type ClientProblem, clientErrorResponse, clientProblemBody } from './client-error.js';
import { incomingHeader } from './incoming-header.js';
import { lingerOrClose } from './pre-read-body.js';

/** a `.` or `..` segment (also `%2e`), or a backslash (also `%5c`), in the path before `?` */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$)/i;
const BACKSLASH = /\\|%5c/i;
/** a percent-encoded unreserved character: 0-9 A-Z a-z - . _ ~ */
const ENCODED_UNRESERVED = /%(3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]|2d|2e|5f|7e)/i;

/** whether the path (before `?`) of a request target is one the guard refuses (see the top) */
export function dotSegmentPath(url: string): boolean {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return (
    DOT_SEGMENT.test(path) || BACKSLASH.test(path) || (path.includes('%') && ENCODED_UNRESERVED.test(path))
  );
}

const UPPER = /[A-Z]/;

/**
 * A Host the API serves: a name or IPv4 address of letters, digits, `-`, `.` and `_`, or an IPv6
 * address in brackets, with an optional port. Anything else is a 400 before @hono/node-server
 * builds a URL of `http://<Host><path>`: it checks only that the URL's hostname is as long as the
 * Host, and a Host in Unicode whose IDNA form (`xn--…`) is exactly that long could carry a path of
 * its own (`aÀÇ×/metrics?` made `GET /` a request for `/metrics`, past a frontend rule on it).
 */
const HOST_SYNTAX = /^(?:[a-z0-9._-]+|\[[0-9a-f:.]+\])(?::\d*)?$/i;

const ABSOLUTE = /^https?:\/\//i;

/**
 * The request target as @hono/node-server takes it: origin-form (`/…`) as is, absolute-form
 * http(s) with its scheme in lower case (a scheme is case-insensitive, RFC 3986 §3.1; it takes
 * only `http://` and `https://`, and `HTTP://host/health` was refused); undefined for anything
 * else (`*`, an authority).
 */
export function servableTarget(url: string): string | undefined {
  if (url.startsWith('/')) return url;
  if (!ABSOLUTE.test(url)) return undefined;
  const colon = url.indexOf(':');
  return url.slice(0, colon).toLowerCase() + url.slice(colon);
}

const badRequest = (detail: string): ClientProblem => ({
  status: 400,
  code: 'bad_request',
  title: 'Bad request',
  detail,
});
const PATH = badRequest(
  'The path must not contain "." or ".." segments or backslashes, raw or percent-encoded, nor percent-encode a letter, a digit, "-", ".", "_" or "~".',
);
const TARGET = badRequest('The request target must be a path starting with "/" ("*" is not served).');
const HOST = badRequest('The Host header is not a valid host with an optional port.');
const NO_HOST = badRequest('An HTTP/1.1 request must carry a Host header.');
const TWO_HOSTS = badRequest('A request must carry one Host header, not several.');

/** how many `Host` headers a request carries (Node keeps the first in `headers`) */
function hostCount(raw: readonly string[]): number {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) if (raw[i]!.length === 4 && raw[i]!.toLowerCase() === 'host') n++;
  return n;
}
const EXPECTATION: ClientProblem = {
  status: 417,
  code: 'expectation_failed',
  title: 'Expectation failed',
  detail: 'The only expectation this server meets is "Expect: 100-continue".',
};
const TRANSFER_CODING: ClientProblem = {
  status: 501,
  code: 'not_implemented',
  title: 'Not implemented',
  detail: 'The only transfer coding served is "chunked" alone: send the body uncompressed.',
};
const CONNECT: ClientProblem = {
  status: 405,
  code: 'method_not_allowed',
  title: 'Method not allowed',
  detail: 'CONNECT is not served here.',
};

/** `servedBy`: the instance id, sent as `X-Served-By` as on every other answer */
type Options = { logger: Logger; servedBy: string; metrics: Metrics; newId?: () => string };

/** how much of a refused path is logged */
export const PATH_LOGGED = 100;

/** the path of a request target as logged: no query (it may carry a secret), at most PATH_LOGGED characters */
export function loggedPath(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return path.length > PATH_LOGGED ? `${path.slice(0, PATH_LOGGED)}…` : path;
}

/** `req`: the refused request, when there is one */
function refusal(
  problem: ClientProblem,
  field: string,
  { logger, newId, servedBy, metrics }: Options,
  req: IncomingMessage | undefined,
  close = true,
) {
  const started = performance.now();
  const requestId = requestIdOf(req && incomingHeader(req, 'X-Request-Id'), newId);
  const method = req?.method ?? 'unknown';
  // debug: any client can send these, and the log must not be its to flood; the metric below
  // counts every one
  logger.debug(
    { status: problem.status, requestId, method, path: loggedPath(req?.url), reason: problem.detail },
    'raw request refused',
  );
  const body = clientProblemBody(problem, requestId, field);
  const headers = {
    'Content-Type': 'application/problem+json',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
    'X-Served-By': servedBy,
    'Content-Length': String(Buffer.byteLength(body)),
    ...(close ? { Connection: 'close' } : {}),
  };
  // Node's parser takes only the methods of its fixed list (`FOO` is a clientError), so the
  // method label is bounded as the app's is
  requestDurationHistogram(metrics).observe(
    { route: UNMATCHED_ROUTE, method, status: problem.status },
    (performance.now() - started) / 1000,
  );
  return { body, headers, requestId };
}

/** the answer, and the connection closed after it */
function answerAndClose(
  req: IncomingMessage,
  res: ServerResponse,
  problem: ClientProblem,
  field: string,
  options: Options,
) {
  const { body, headers } = refusal(problem, field, options, req);
  res.shouldKeepAlive = false;
  res.writeHead(problem.status, headers);
  res.end(body);
}

/** the answer, the request's body read and dropped behind it (within bounds), the connection kept */
function refuse(
  req: IncomingMessage,
  res: ServerResponse,
  problem: ClientProblem,
  field: string,
  options: Options,
) {
  const { body, headers } = refusal(problem, field, options, req, false);
  lingerOrClose(req, res, 0);
  res.writeHead(problem.status, headers);
  res.end(body);
}

/**
 * The `errorHandler` of @hono/node-server's request listener: a request it could not build a URL
 * of (a Host such as `x:abc`, `a b`, `x:99999`, `[::1`) is answered 400 problem+json, field
 * `header.Host`, instead of its bare 400; anything else thrown before the app answered, 500.
 */
export function requestErrorResponse(error: unknown, options: Options): Response {
  const bad = error instanceof RequestError;
  const problem: ClientProblem = bad
    ? HOST
    : { status: 500, code: 'internal_error', title: 'Internal server error', detail: 'The request failed.' };
  if (!bad)
    options.logger.error(
      { err: error instanceof Error ? error.message : String(error) },
      'request failed before the app',
    );
  const { body, headers } = refusal(problem, bad ? 'header.Host' : 'request', options, undefined);
  return new Response(body, { status: problem.status, headers });
}

/** a `Transfer-Encoding` other than `chunked` alone (any case, spaces around) */
export function unservedTransferCoding(value: string | undefined): boolean {
  return value !== undefined && value.trim().toLowerCase() !== 'chunked';
}

/** `listener` behind the path and Host checks; the server must be made with `requireHostHeader: false` */
export function guardRawRequests(listener: RequestListener, options: Options): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    const target = req.url === undefined ? undefined : servableTarget(req.url);
    if (req.url !== undefined && dotSegmentPath(req.url)) refuse(req, res, PATH, 'path', options);
    else if (req.url !== undefined && target === undefined) refuse(req, res, TARGET, 'path', options);
    else if (req.httpVersion === '1.1' && req.headers.host === undefined)
      refuse(req, res, NO_HOST, 'header.Host', options);
    else if (req.headers.host !== undefined && !HOST_SYNTAX.test(req.headers.host))
      refuse(req, res, HOST, 'header.Host', options);
    else if (req.headers.host !== undefined && hostCount(req.rawHeaders) > 1)
      refuse(req, res, TWO_HOSTS, 'header.Host', options);
    else if (unservedTransferCoding(req.headers['transfer-encoding']))
      answerAndClose(req, res, TRANSFER_CODING, 'header.Transfer-Encoding', options);
    else {
      // a host is case-insensitive, and its port may be empty (RFC 3986 §3.2.3); @hono/node-server
      // refuses one in capitals with a port (`API.example:80`: the URL's lowercased hostname is
      // not the header's) and one with an empty port (`localhost:`)
      const host = req.headers.host;
      if (host !== undefined && (UPPER.test(host) || host.endsWith(':')))
        req.headers.host = host.toLowerCase().replace(/:$/, '');
      if (target !== undefined && target !== req.url) req.url = target;
      // an absolute-form target names the host in place of Host (RFC 9112 §3.2.2): without a
      // Host (HTTP/1.0) it becomes the Host, so the allowed-hosts check judges it (a review:
      // `GET http://evil.example/health/config HTTP/1.0` was answered under any list)
      if (host === undefined && target !== undefined && ABSOLUTE.test(target)) {
        const authority = URL.canParse(target) ? new URL(target).host : '';
        if (authority !== '') {
          req.headers.host = authority;
          req.rawHeaders.push('Host', authority);
        }
      }
      listener(req, res);
    }
  };
}

/** problem+json answers to an unmet `Expect` and to `CONNECT` */
export function installRawRequestHandlers(server: Pick<EventEmitter, 'on'>, options: Options): void {
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
    answerAndClose(req, res, EXPECTATION, 'header.Expect', options),
  );
  server.on('connect', (req: IncomingMessage, socket: Duplex) => {
    // logged and counted as every refusal; the answer is written to the raw socket
    const { requestId } = refusal(CONNECT, 'request', options, req);
    socket.end(clientErrorResponse(CONNECT, requestId, options.servedBy), () => socket.destroy());
  });
}
