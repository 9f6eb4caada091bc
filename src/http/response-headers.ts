/**
 * Response headers kept in a plain object until the answer is built, instead of Hono's
 * `c.header()`, which keeps them in a Fetch `Headers`. @hono/node-server hands a plain object
 * straight to Node's `writeHead`; a `Headers` it first copies into one, and each `c.header()`
 * goes through undici's header validation: about 6 % of an instance's on-CPU samples under a
 * cached read (bench/ROUNDS.md).
 *
 * Contract:
 * - `setHeader(c, name, value)` remembers one header for this request's answer; the last value
 *   for a name wins. Use one spelling per name (`X-Cache`, not also `x-cache`).
 * - `jsonResponse(c, object, status)` and `textBody(c, text, status, contentType)` (text or bytes) build the
 *   answer with every header set so far; a header set after that is not in it.
 * - `finishHeaders(c)` is for createApp's first middleware, after the route ran: an answer built
 *   some other way (the OpenAPI document, the docs page, anything Hono builds itself) is made
 *   again with the headers then, so every answer carries `X-Request-Id` and `X-Served-By`.
 * Runtime-neutral: on other runtimes the plain object becomes the Response's headers as usual.
 */
import type { Context, TypedResponse } from 'hono';
import type { ContentfulStatusCode, StatusCode } from 'hono/utils/http-status';
import type { InvalidJSONValue, JSONParsed, JSONValue } from 'hono/utils/types';
import type { AppEnv } from '../app-env.js';

/** answers built here, which carry the headers already */
const built = new WeakSet<Response>();

function headersOf(c: Context<AppEnv>): Record<string, string> {
  let headers = c.get('responseHeaders');
  if (!headers) {
    headers = {};
    c.set('responseHeaders', headers);
  }
  return headers;
}

export function setHeader(c: Context<AppEnv>, name: string, value: string): void {
  headersOf(c)[name] = value;
}

export function textBody(
  c: Context<AppEnv>,
  text: string | Uint8Array | null,
  status: StatusCode,
  contentType?: string,
): Response {
  const headers = { ...headersOf(c) };
  if (contentType) headers['Content-Type'] = contentType;
  const res = new Response(text, { status, headers });
  built.add(res);
  return res;
}

export function jsonResponse<T extends JSONValue | object | InvalidJSONValue, U extends ContentfulStatusCode>(
  c: Context<AppEnv>,
  object: T,
  status: U,
): Response & TypedResponse<JSONParsed<T>, U, 'json'> {
  return textBody(c, JSON.stringify(object), status, 'application/json') as Response &
    TypedResponse<JSONParsed<T>, U, 'json'>;
}

export function finishHeaders(c: Context<AppEnv>): void {
  const res = c.res;
  if (built.has(res)) return;
  const headers = c.get('responseHeaders');
  if (!headers) return;
  // a new Response with every header, not the old one's headers changed: a HEAD's answer is made
  // from the GET's (`new Response(null, res)`), and under @hono/node-server's lightweight
  // Response that took the headers the answer was made with (`HEAD /docs` came without
  // `nosniff`, `X-Request-Id`, `X-Served-By`: an outside check)
  const merged = new Headers(res.headers);
  for (const name in headers) merged.set(name, headers[name]!);
  const answer = new Response(res.body, { status: res.status, statusText: res.statusText, headers: merged });
  built.add(answer);
  c.res = answer;
}
