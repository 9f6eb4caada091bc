/**
 * `noBody`: the middleware of a write that takes no body (`POST /v1/loans/{id}/return`,
 * `DELETE /v1/books/{id}`). A body sent there is a client's mistake (a field meant for another
 * route, a wrong URL), refused with a 400 naming `body`, as an unknown field or query parameter
 * is, instead of being ignored. An empty body and `{}` (what some clients send by default with a
 * POST) are taken as none.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv } from '../app-env.js';
import { fieldProblem } from '../http/validation-problem.js';

const EMPTY_OBJECT = /^\s*(?:\{\s*\})?\s*$/;

export const noBody: MiddlewareHandler<AppEnv> = async (c, next) => {
  // the body was read up to the size limit before (app.ts); this reads Hono's cached copy
  const text = await c.req.text();
  if (!EMPTY_OBJECT.test(text)) {
    throw fieldProblem('body', 'this route takes no body (send none, or {})');
  }
  await next();
};
