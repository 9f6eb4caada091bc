/**
 * What Node's HTTP server would otherwise answer without problem+json, or pass on to Hono in a
 * form that hides it, checked on the raw request before Hono sees it:
 * - a path with a `.` or `..` segment, raw or percent-encoded (`/x/%2e%2e/metrics`), or a
 *   backslash where a slash would be (`\`): the WHATWG URL that @hono/node-server builds
 *   resolves them, so `/x/%2e%2e/metrics` was served as `/metrics`, past a frontend rule that
 *   denies `path_beg /metrics` (README). Answered 400, field `path`;
 * - an HTTP/1.1 request without `Host` (RFC 9112 §3.2): Node's own answer was a bare 400 with no
 *   body (`requireHostHeader` is turned off for this). Answered 400, field `header.Host`;
 * - `Expect` other than `100-continue` ('checkExpectation'): Node's own was a bare 417;
 * - `CONNECT` ('connect'): Node closed the connection without a word. Answered 405 on the raw
 *   socket, which is then closed (its bytes after the request line are not HTTP to us).
 * Every answer is problem+json with `X-Request-Id` and `nosniff` (those on a response object also
 * `Cache-Control: no-store`), and closes the connection; the log line (debug) holds the reason and the request id, never the
 * path or a header (either may carry a secret).
 */
import type { EventEmitter } from 'node:events';
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from '../observability/logger.js';
import { type ClientProblem, clientErrorResponse, clientProblemBody } from './client-error.js';

/** a `.` or `..` segment (also `%2e`), or a backslash (also `%5c`), in the path before `?` */
const DOT_SEGMENT = /(^|\/)(\.|%2e){1,2}(\/|$)/i;
const BACKSLASH = /\\|%5c/i;

export function dotSegmentPath(url: string): boolean {
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  return DOT_SEGMENT.test(path) || BACKSLASH.test(path);
}

const badRequest = (detail: string): ClientProblem => ({
  status: 400,
  code: 'bad_request',
  title: 'Bad request',
  detail,
});
const PATH = badRequest(
  'The path must not contain "." or ".." segments or backslashes, raw or percent-encoded.',
);
const NO_HOST = badRequest('An HTTP/1.1 request must carry a Host header.');
const EXPECTATION: ClientProblem = {
  status: 417,
  code: 'expectation_failed',
  title: 'Expectation failed',
  detail: 'The only expectation this server meets is "Expect: 100-continue".',
};
const CONNECT: ClientProblem = {
  status: 405,
  code: 'method_not_allowed',
  title: 'Method not allowed',
  detail: 'CONNECT is not served here.',
};

type Options = { logger: Logger; newId?: () => string };

function answer(res: ServerResponse, problem: ClientProblem, field: string, { logger, newId }: Options) {
  const requestId = (newId ?? (() => crypto.randomUUID()))();
  logger.debug({ status: problem.status, requestId, reason: problem.detail }, 'raw request refused');
  const body = clientProblemBody(problem, requestId, field);
  res.shouldKeepAlive = false;
  res.writeHead(problem.status, {
    'Content-Type': 'application/problem+json',
    'X-Content-Type-Options': 'nosniff',
    'Cache-Control': 'no-store',
    'X-Request-Id': requestId,
    'Content-Length': Buffer.byteLength(body),
    Connection: 'close',
  });
  res.end(body);
}

/** `listener` behind the path and Host checks; the server must be made with `requireHostHeader: false` */
export function guardRawRequests(listener: RequestListener, options: Options): RequestListener {
  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== undefined && dotSegmentPath(req.url)) answer(res, PATH, 'path', options);
    else if (req.httpVersion === '1.1' && req.headers.host === undefined)
      answer(res, NO_HOST, 'header.Host', options);
    else listener(req, res);
  };
}

/** problem+json answers to an unmet `Expect` and to `CONNECT` */
export function installRawRequestHandlers(server: Pick<EventEmitter, 'on'>, options: Options): void {
  server.on('checkExpectation', (_req: IncomingMessage, res: ServerResponse) =>
    answer(res, EXPECTATION, 'header.Expect', options),
  );
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    const requestId = (options.newId ?? (() => crypto.randomUUID()))();
    options.logger.debug({ status: 405, requestId }, 'CONNECT refused');
    socket.end(clientErrorResponse(CONNECT, requestId), () => socket.destroy());
  });
}
