/**
 * `urlValidator(target, schema)`: what `zValidator('param' | 'query', schema)` with the app's
 * default hook does — parse the path parameters or the query, answer a 400 problem naming every
 * invalid field (http/validation-problem.ts), else hand the parsed value to `c.req.valid(target)`
 * — without reading a request header. Hono's `validator` asks for `Content-Type` before it looks
 * at the target, and on Node that first header read copies every request header into a Fetch
 * Headers: about 3 % of an instance's on-CPU samples under a cached read (bench/ROUNDS.md).
 * Used by `openapiV1` for the parts of a request that live in the URL; bodies still go through
 * zod-openapi, which needs the type.
 *
 * The query is given to the schema as one string per key; a key repeated (`?limit=1&limit=2`)
 * is a 400 naming it (no query parameter of the API takes several values).
 */
import type { Context, MiddlewareHandler } from 'hono';
import { type ZodType, z } from 'zod';
import type { AppEnv } from '../app-env.js';
import { fieldProblem, validationProblem } from '../http/validation-problem.js';

/** what a route without query parameters sees in its query: nothing is allowed */
const NO_QUERY = z.strictObject({});

/**
 * A 400 for a parameter with a value and no name (`?=x`, `?limit=5&=x`): Hono's query parser
 * drops it, so without this the request would be answered as if it had not been sent. A bare `&`
 * or `?` (no name, no value) is nothing and stays allowed.
 */
function refuseNamelessParameter(url: string, q: number): void {
  if (url.charCodeAt(q + 1) === 61 /* = */ || url.includes('&=', q))
    throw fieldProblem('query', 'a parameter has a value but no name (`=` right after `?` or `&`)');
}

/** a 400 naming each query parameter, for a route that takes none; a URL without `?` costs one scan */
function refuseAnyQuery(c: Context<AppEnv>): void {
  const q = c.req.url.indexOf('?');
  if (q < 0) return;
  refuseNamelessParameter(c.req.url, q);
  const refused = NO_QUERY.safeParse(c.req.queries());
  if (!refused.success) throw validationProblem('query', refused.error);
}

/**
 * A 400 for a nameless parameter (above), or for a query parameter whose percent-encoding is not
 * UTF-8 (`?author=%FF`): Hono then keeps the raw text, and the search would look for "%FF". Only
 * a URL with a `%` is scanned for the latter.
 */
function refuseBadQueryText(c: Context<AppEnv>): void {
  const url = c.req.url;
  const q = url.indexOf('?');
  if (q < 0) return;
  refuseNamelessParameter(url, q);
  if (!url.includes('%', q)) return;
  for (const pair of url.slice(q + 1).split('&')) {
    const eq = pair.indexOf('=');
    const rawKey = eq < 0 ? pair : pair.slice(0, eq);
    try {
      decodeURIComponent(pair.replaceAll('+', ' '));
    } catch {
      let key = rawKey;
      try {
        key = decodeURIComponent(rawKey);
      } catch {
        /* the key itself is the bad part: named as sent */
      }
      throw fieldProblem(`query.${key.slice(0, 64)}`, 'not valid percent-encoded UTF-8');
    }
  }
}

/** the middleware of a route with neither path nor query parameters */
export const noQuery: MiddlewareHandler<AppEnv> = async (c, next) => {
  refuseAnyQuery(c);
  await next();
};

/** each query parameter's one value; one given twice (`?limit=1&limit=2`) is a 400 naming it */
function singleValues(queries: Record<string, string[]>): Record<string, string> {
  const values: Record<string, string> = {};
  for (const [name, given] of Object.entries(queries)) {
    if (given.length > 1)
      throw fieldProblem(`query.${name}`, 'given more than once: send each parameter once');
    values[name] = given[0]!;
  }
  return values;
}

/**
 * `refuseQuery`: the route takes no query parameters, so any is a 400 too — checked here, not in
 * a middleware of its own: one more handler in a cached read's chain cost it ~2 % (bench/ab.ts).
 */
export function urlValidator(
  target: 'param' | 'query',
  schema: ZodType,
  { refuseQuery = false } = {},
): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (refuseQuery) refuseAnyQuery(c);
    if (target === 'query') refuseBadQueryText(c);
    const value = target === 'param' ? c.req.param() : singleValues(c.req.queries());
    const result = await schema.safeParseAsync(value);
    if (!result.success) throw validationProblem(target, result.error);
    c.req.addValidatedData(target, result.data as object);
    await next();
  };
}
