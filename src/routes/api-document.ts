/**
 * What /openapi.json says beyond the routes' own entries:
 * - `API_INFO`: the document's `info`, whose description states the answers every path can give
 *   and no operation lists (OpenAPI has no place for an answer to a method a path lacks);
 * - `API_SERVERS`: the document's `servers`;
 * - `documentDocRoutes`: `/openapi.json` and `/docs` themselves, which are plain routes, and the
 *   components of the headers every answer carries (http/common-response-headers.ts).
 * Documentation only: nothing here runs per request.
 */
import { type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { registerCommonResponseHeaders, withCommonResponseHeaders } from '../http/common-response-headers.js';

export const API_INFO = {
  title: 'shardgate',
  version: '0.1.0',
  description: [
    'Multi-tenant library API over sharded MariaDB.',
    'Every error is `application/problem+json` with `code` and `requestId`, the 503 of `GET /health/ready` too (`draining` or `config_not_loaded`). Every answer carries `X-Request-Id` and `X-Served-By`.',
    "Every path that serves `GET` also serves `HEAD`: the GET's status and headers without a body (`Allow` lists `HEAD`; the document lists no HEAD operations).",
    'Besides what each operation lists, any path can answer:',
    '- 404 `not_found`: no route for this path;',
    '- 405 `method_not_allowed`, with `Allow`: the path exists, not with this method;',
    '- 204 to `OPTIONS` of a path that exists, with `Allow` (and, under `/v1`, CORS headers for an origin the `cors/allowed_origins` setting lists);',
    "- 403 `origin_not_allowed`: a `/v1` write whose `Origin` is neither in `cors/allowed_origins` nor the API's own host (a browser page on another site); nothing is written;",
    '- 408 `request_timeout` and 431 `headers_too_large` (the Node entry): the request came too slowly, or its headers exceed 16 KB; the connection is closed after them;',
    '- 417 `expectation_failed` (the Node entry): an `Expect` other than `100-continue`;',
    '- 421 `host_not_allowed`: the `Host` is not a name the `http/allowed_hosts` setting lists (an IP address, `localhost` and a request without `Host` always pass); nothing is read or written;',
    '- 400 `bad_request`: the request is not valid HTTP, an HTTP/1.1 request has no `Host`, or its path has a `.` or `..` segment or a backslash (raw or percent-encoded; the Node entry); or a body cannot be read as JSON at all (not JSON, empty, not UTF-8), with `errors` naming `body`. A body that reads but holds invalid values is `validation_failed`.',
  ].join('\n'),
};

/**
 * The document's `servers`: relative, so a client generator or a "try it" call goes to the host
 * that served the document (an instance, or HAProxy in front of them), whatever its name.
 */
export const API_SERVERS = [{ url: '/', description: 'the host that served this document' }];

export function documentDocRoutes(app: OpenAPIHono<AppEnv>): void {
  registerCommonResponseHeaders(app);
  app.openAPIRegistry.registerPath(
    withCommonResponseHeaders({
      method: 'get',
      path: '/openapi.json',
      operationId: 'getOpenApiDocument',
      tags: ['documentation'],
      summary: 'This document (OpenAPI 3.1)',
      security: [],
      responses: {
        200: {
          description: 'the OpenAPI document',
          content: { 'application/json': { schema: z.object({}).passthrough() } },
        },
      },
    }),
  );
  app.openAPIRegistry.registerPath(
    withCommonResponseHeaders({
      method: 'get',
      path: '/docs',
      operationId: 'getDocsPage',
      tags: ['documentation'],
      summary:
        'Swagger UI over /openapi.json (its files from this instance; from jsDelivr on a runtime without them)',
      security: [],
      responses: { 200: { description: 'an HTML page', content: { 'text/html': { schema: z.string() } } } },
    }),
  );
}
