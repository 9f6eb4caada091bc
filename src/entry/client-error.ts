/**
 * Errors Node's HTTP parser raises before a request exists (`'clientError'`), answered as
 * problem+json (CONTRACT.md §6) instead of Node's bare status line:
 * - `HPE_HEADER_OVERFLOW` (headers over `--max-http-header-size`, 16 KB) → 431;
 * - `HPE_CHUNK_EXTENSIONS_OVERFLOW` → 413 (Node's own choice for it);
 * - `ERR_HTTP_REQUEST_TIMEOUT` (`server.requestTimeout`) → 408;
 * - any other parse error → 400.
 * The answer carries `Connection: close` and the socket is destroyed once it is written: the
 * parser's state is broken, so nothing more can be read from that connection. As Node's default handler does,
 * nothing is written when the socket is no longer writable (ECONNRESET: the client is gone) or
 * the response to an earlier request on it has already started (bytes of ours would corrupt
 * it); the socket is only destroyed then.
 * No request exists, so `requestId` is a fresh id (no header of it was parsed), logged at debug
 * (any client can send these: the log must not be its to flood) with the error code and status — never `err.rawPacket` or any header (credentials) — and the
 * answer counted in `http_request_duration_seconds` (http/request-duration.ts) as
 * `route="unmatched"`, `method="unknown"` (an unknown method such as `FOO` is one of these errors),
 * so refusals before Hono are seen as the app's are; an outside check found them in neither.
 */
import type { EventEmitter } from 'node:events';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import { PROBLEM_TYPE_BASE } from '../http/problem.js';
import { requestDurationHistogram, UNMATCHED_ROUTE } from '../http/request-duration.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';

export interface ClientProblem {
  status: number;
  code: string;
  title: string;
  detail: string;
}

export function clientErrorProblem(errorCode: string | undefined): ClientProblem {
  switch (errorCode) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        code: 'headers_too_large',
        title: 'Request header fields too large',
        // Node counts the request line with the headers: a long query string ends here too
        detail:
          'The request line and headers exceed the 16 KB this server accepts (the URL counts: a long query string too).',
      };
    case 'HPE_CHUNK_EXTENSIONS_OVERFLOW':
      return {
        status: 413,
        code: 'payload_too_large',
        title: 'Payload too large',
        detail: 'The chunk extensions of the request body are too large.',
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return {
        status: 408,
        code: 'request_timeout',
        title: 'Request timeout',
        detail: 'The request was not received completely in time.',
      };
    default:
      return {
        status: 400,
        code: 'bad_request',
        title: 'Bad request',
        detail: 'The request is not valid HTTP.',
      };
  }
}

/** The problem+json body of such an answer; a 400 names `field` (default: the request itself). */
export function clientProblemBody(problem: ClientProblem, requestId: string, field = 'request'): string {
  return JSON.stringify({
    type: `${PROBLEM_TYPE_BASE}${problem.code}`,
    title: problem.title,
    status: problem.status,
    detail: problem.detail,
    code: problem.code,
    requestId,
    // every 400 names what is wrong (docs/http-api.md): here the request itself, or the part named
    ...(problem.status === 400 ? { errors: [{ field, message: problem.detail }] } : {}),
  });
}

/** The raw HTTP/1.1 answer written to the socket (no request or response object exists). */
/** `servedBy`: the instance id, as `X-Served-By` (every answer of an instance names it) */
export function clientErrorResponse(problem: ClientProblem, requestId: string, servedBy?: string): string {
  const body = clientProblemBody(problem, requestId);
  return [
    `HTTP/1.1 ${problem.status} ${STATUS_CODES[problem.status] ?? ''}`,
    'Content-Type: application/problem+json',
    'X-Content-Type-Options: nosniff',
    // a refusal is never for a cache to keep (as every /v1 answer)
    'Cache-Control: no-store',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-Id: ${requestId}`,
    ...(servedBy === undefined ? [] : [`X-Served-By: ${servedBy}`]),
    'Connection: close',
    '',
    body,
  ].join('\r\n');
}

/** Node's own check (lib/_http_server.js socketOnError): the in-flight response, if any */
type ServerSocket = Duplex & { _httpMessage?: { headersSent?: boolean } | null };

export function installClientErrorHandler(
  server: Pick<EventEmitter, 'on'>,
  {
    logger,
    servedBy,
    metrics,
    newId = () => crypto.randomUUID(),
  }: { logger: Logger; servedBy?: string; metrics?: Metrics; newId?: () => string },
): void {
  const requestDuration = metrics && requestDurationHistogram(metrics);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: ServerSocket) => {
    const started = performance.now();
    const code = err.code ?? 'unknown';
    if (err.code === 'ECONNRESET' || !socket.writable || socket._httpMessage?.headersSent) {
      logger.debug({ code }, 'client connection error; nothing answered');
      socket.destroy();
      return;
    }
    const problem = clientErrorProblem(err.code);
    const requestId = newId();
    // debug: any client can send these, and the log must not be its to flood; the metric below
    // counts every one. No part of the request in the line
    logger.debug({ code, status: problem.status, requestId }, 'unparseable request answered');
    // the method label is fixed: the parser did not take one (and `FOO` must not become a label)
    requestDuration?.observe(
      { route: UNMATCHED_ROUTE, method: 'unknown', status: problem.status },
      (performance.now() - started) / 1000,
    );
    // destroyed once written: an HTTP server socket allows half-open, and a client that never
    // closes its side must not hold it
    socket.end(clientErrorResponse(problem, requestId, servedBy), () => socket.destroy());
  });
}
