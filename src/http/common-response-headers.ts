/**
 * The OpenAPI view of the headers createApp's first middleware puts on every answer (app.ts:
 * `X-Request-Id`, `X-Served-By`, `X-Content-Type-Options: nosniff`), as components of the
 * document (`#/components/headers/<name>`) that every response entry refers to:
 * - `registerCommonResponseHeaders(registry)` adds the components, once per app;
 * - `COMMON_RESPONSE_HEADERS` is the entry's `headers` part referring to them (the /v1 routes add
 *   it in v1-response-docs.ts);
 * - `withCommonResponseHeaders(route)` adds it to every response of a route outside /v1.
 * Documentation only: nothing here runs per request.
 */
import type { OpenAPIHono, RouteConfig } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';

type Header = { description: string; schema: { type: 'string'; enum?: string[] } };

const COMPONENTS: Record<string, Header> = {
  'X-Request-Id': {
    description: 'the request id (the caller’s own when short and plain), also in problem bodies',
    schema: { type: 'string' },
  },
  'X-Served-By': { description: 'the API instance that answered', schema: { type: 'string' } },
  'X-Content-Type-Options': {
    description: 'a browser takes the answer for its declared type only',
    schema: { type: 'string', enum: ['nosniff'] },
  },
};

export const COMMON_RESPONSE_HEADERS: Readonly<Record<string, { $ref: string }>> = Object.fromEntries(
  Object.keys(COMPONENTS).map((name) => [name, { $ref: `#/components/headers/${name}` }]),
);

export function registerCommonResponseHeaders(app: OpenAPIHono<AppEnv>): void {
  for (const [name, header] of Object.entries(COMPONENTS))
    app.openAPIRegistry.registerComponent('headers', name, header);
}

type Responses = RouteConfig['responses'];

/** the responses with the common headers beside each one's own */
export function withCommonResponseHeaders<R extends { responses: Responses }>(route: R): R {
  const responses: Responses = {};
  for (const [status, response] of Object.entries(route.responses)) {
    // the routes give their own headers as plain objects, not as a zod object
    const own =
      '$ref' in response
        ? undefined
        : (response.headers as Record<string, Header | { $ref: string }> | undefined);
    responses[status] =
      '$ref' in response ? response : { ...response, headers: { ...COMMON_RESPONSE_HEADERS, ...own } };
  }
  return { ...route, responses };
}
