/**
 * `noBody`: the middleware of a write that takes no body (`POST /v1/loans/{id}/return`,
 * `DELETE /v1/books/{id}`). A body sent there is a client's mistake (a field meant for another
 * route, a wrong URL), refused with a 400 naming `body`, as an unknown field or query parameter
 * is, instead of being ignored. An empty body and `{}` (what some clients send by default with a
 * POST) are taken as none; `{}` only as JSON, as any body: with another `Content-Type`
 * (`text/plain`, none) it is a 415 naming `header.Content-Type`, as on a route that takes a body
 * (before, it was taken: an outside check).
 */
import type { MiddlewareHandler } from 'hono';
import { HTTPException } from 'hono/http-exception';
import type { AppEnv } from '../app-env.js';
import { requestHeader } from '../http/request-header.js';
import { fieldProblem } from '../http/validation-problem.js';

/** application/json or application/<x>+json, with parameters: what Hono's json validator takes */
const JSON_TYPE = /^application\/([a-z0-9.-]+\+)?json\s*(;|$)/i;

/**
 * Whether `text` is no body: empty, white space, or `{}` with white space anywhere around its
 * braces. Linear in the text: the one regular expression it was, `^\s*(?:\{\s*\})?\s*$`, took
 * time quadratic in a run of spaces followed by anything else (16 KB of them: 130–207 ms of the
 * event loop per request, an outside check).
 */
export function isNoBody(text: string): boolean {
  const t = text.trim();
  return t === '' || /^\{\s*\}$/.test(t);
}

export const noBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  // the body was read up to the size limit before (app.ts); this reads Hono's cached copy
  const text = await c.req.text();
  if (!isNoBody(text)) {
    throw fieldProblem('body', 'this route takes no body (send none, or {})');
  }
  // the app's error handler words the 415 as for a route that takes a body
  if (text.trim() !== '' && !JSON_TYPE.test(requestHeader(c, 'Content-Type') ?? ''))
    throw new HTTPException(415);
  await next();
};
