/**
 * createApp(services): the whole HTTP surface, runtime-neutral (no node: imports). Entries build
 * the real adapters and call it; unit tests call it with memory adapters and `app.request()`.
 *
 * Cross-cutting contract (CONTRACT.md §6): every answer carries `X-Request-Id` and
 * `X-Served-By`; every error is problem+json, but the readiness 503 (a HealthStatus); bodies are
 * capped at BODY_LIMIT_BYTES (413); unknown errors are logged with the request id and answered as
 * a generic 500.
 */

import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { matchedRoutes } from 'hono/route';
import type { AppEnv, Services } from './app-env.js';
import { accessLogged } from './config/access-log-mode.js';
import { CallerGoneError } from './domain/data-access.js';
import { PasswordWorkBusyError } from './domain/password-hasher.js';
import { accessLine } from './http/access-line.js';
import { type AllowedMethods, allowedMethods } from './http/allowed-methods.js';
import { BODY_LIMIT_BYTES, BODY_LIMIT_DETAIL } from './http/body-limit.js';
import { answerCors, crossOriginWriteRefusal } from './http/cors.js';
import { DEPENDENCY_LOG_LINE, dependencyProblem } from './http/dependency-problem.js';
import { duplicateJsonKey } from './http/duplicate-json-key.js';
import { echoText } from './http/echo-text.js';
import { answersEveryHost, hostRefusal } from './http/host-check.js';
import { ProblemError, problemResponse } from './http/problem.js';
import { requestDurationHistogram, UNMATCHED_ROUTE } from './http/request-duration.js';
import { requestHeader } from './http/request-header.js';
import { requestIdOf } from './http/request-id.js';
import { finishHeaders, setHeader, textBody } from './http/response-headers.js';
import { utf8Text } from './http/utf8-text.js';
import { fieldProblem, unreadableBody, validationProblem } from './http/validation-problem.js';
import { loggableError } from './observability/loggable-error.js';
import { BreakerOpenError, CallTimeoutError, DependencyError } from './resilience/errors.js';
import { API_INFO, API_SERVERS, documentDocRoutes } from './routes/api-document.js';
import { registerAuthRoutes } from './routes/auth.js';
import { registerBookRoutes } from './routes/books.js';
import { registerDocsRoutes } from './routes/docs-page.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerLoanRoutes } from './routes/loans.js';
import { registerMemberRoutes } from './routes/members.js';
import { registerMetricsRoute } from './routes/metrics.js';
import { registerV1Context } from './routes/v1-context.js';

export type { AppEnv, Services } from './app-env.js';

export { BODY_LIMIT_BYTES } from './http/body-limit.js';

/** the answer to a body that is not plain JSON (another Content-Type, or compressed) */
/** a 415 naming the header at fault in its detail and `errors`, as a 400 names its field */
function unsupportedMediaType(field: 'header.Content-Type' | 'header.Content-Encoding', message: string) {
  return {
    status: 415,
    code: 'unsupported_media_type',
    title: 'Unsupported Media Type',
    detail: `${field}: ${message}`,
    extra: { errors: [{ field, message }] },
  } as const;
}
/** the `charset` parameter of a Content-Type, quoted or not */
const CHARSET = /;\s*charset\s*=\s*"?([^";\s]*)"?/i;

/** a field given twice in a JSON body: a 400 naming it (JSON.parse would keep the last silently) */
function refuseDuplicateKeys(text: string): void {
  const name = duplicateJsonKey(text);
  if (name !== undefined) throw fieldProblem(`body.${name}`, 'given more than once: send each field once');
}

export function createApp(services: Services): OpenAPIHono<AppEnv> {
  const requestDuration = requestDurationHistogram(services.metrics);
  const app = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw validationProblem(result.target, result.error);
    },
  });

  // the methods served on a path, from the routes registered below (built at the first request)
  let allowedOn: AllowedMethods | undefined;
  const methodsOn = (path: string): string[] => {
    allowedOn ??= allowedMethods(app.routes);
    return allowedOn(path);
  };

  app.use(async (c, next) => {
    c.set('services', services);
    // a caller's id is kept only when it is short and plain; anything else gets a fresh one
    const id = requestIdOf(requestHeader(c, 'X-Request-Id'));
    c.set('requestId', id);
    // nosniff: a browser must take every answer for its declared type (JSON, problem+json)
    c.set('responseHeaders', {
      'X-Request-Id': id,
      'X-Served-By': services.instanceId,
      'X-Content-Type-Options': 'nosniff',
    });
    const started = performance.now();
    const config = services.config.current();
    try {
      // a Host not in http/allowed_hosts (DNS rebinding) first, on every path; then a preflight
      // from an allowed origin, before any tenant or body check
      // c.req.url: the Host's, or an absolute-form target's authority; without a Host, the
      // listen address's (SHARDGATE_LISTEN_HOST), which is not the caller's to judge
      // (no header read while every host is answered, the default: this runs on every request)
      const allowedHosts = config.http.allowedHosts;
      const host = answersEveryHost(allowedHosts) ? undefined : requestHeader(c, 'Host');
      const misdirected = host === undefined ? undefined : hostRefusal(host, allowedHosts, c.req.url);
      const preflight = misdirected ? undefined : answerCors(c, config.cors.allowedOrigins, methodsOn);
      if (misdirected) c.res = problemResponse(c, misdirected);
      else if (preflight) c.res = preflight;
      else {
        await next();
        finishHeaders(c);
      }
    } finally {
      // the template of the route the request matched (`/v1/books/:id`), so ids never explode
      // the label set; also when a middleware answered first (401, 403, 404 tenant); `unmatched`
      // for a path or method no route serves (404, 405)
      // (a handler's own template is `c.req.routePath`; only a middleware's answer, whose path
      // is a wildcard, looks further, so the common case allocates nothing)
      const own = c.req.routePath;
      const route = own.endsWith('*')
        ? (matchedRoutes(c).findLast((r) => r.method !== 'ALL')?.path ?? UNMATCHED_ROUTE)
        : own;
      const ms = performance.now() - started;
      requestDuration.observe({ route, method: c.req.method, status: c.res.status }, ms / 1000);
      // http/access_log (off by default): one line per answer it selects
      if (accessLogged(config.http.accessLog, c.res.status))
        services.logger.info(accessLine(c, route, ms), 'request');
    }
  });
  const tooLarge = (): never => {
    throw new ProblemError({
      status: 413,
      code: 'payload_too_large',
      title: 'Payload too large',
      detail: BODY_LIMIT_DETAIL,
    });
  };
  const limitBody = bodyLimit({ maxSize: BODY_LIMIT_BYTES, onError: tooLarge });
  registerHealthRoutes(app);
  registerMetricsRoute(app);
  // the library API: tenant middleware first (so that a refused body below still answers with
  // `X-Shard` and `Cache-Control: no-store`, as every /v1 answer does), then one file per resource
  registerV1Context(app);
  // a write from a page on an origin not allowed (http/cors.ts), before its body is read; a path
  // no route serves keeps its 404 or 405
  app.use('/v1/*', (c, next) => {
    const refusal = crossOriginWriteRefusal(c, services.config.current().cors.allowedOrigins);
    if (refusal && matchedRoutes(c).some((r) => r.method !== 'ALL')) throw new ProblemError(refusal);
    return next();
  });
  // GET and HEAD requests have no body in the Fetch API (a Request cannot be built with one), so
  // they skip the limit. Checking them would build a full Fetch Request around the Node request
  // (an AbortController and undici's Request): the largest single CPU cost of a cached GET.
  // A body the runtime already read (Services.preReadBody) goes into Hono's body cache, where
  // `c.req.json()` and the validators find it; it was read up to the same limit.
  app.use((c, next) => {
    if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    // a compressed body would only fail as "malformed JSON": say what is wrong with it
    const encoding = requestHeader(c, 'Content-Encoding');
    if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
      throw new ProblemError(
        unsupportedMediaType(
          'header.Content-Encoding',
          `"${encoding.slice(0, 40)}" is not accepted; send the body uncompressed`,
        ),
      );
    }
    // JSON is UTF-8 (RFC 8259 §8.1): a body declared in another charset would be read wrongly
    const charset = CHARSET.exec(requestHeader(c, 'Content-Type') ?? '')?.[1];
    if (charset !== undefined && charset.toLowerCase() !== 'utf-8' && charset.toLowerCase() !== 'utf8') {
      throw new ProblemError(
        unsupportedMediaType(
          'header.Content-Type',
          `charset "${charset.slice(0, 40)}" is not accepted; send the body as UTF-8`,
        ),
      );
    }
    const body = services.preReadBody?.(c);
    // another runtime: the body read through the Fetch API, within the limit, and held to UTF-8
    // as the Node entry holds it (the Fetch API's text() would store U+FFFD for such bytes)
    if (body === undefined)
      return limitBody(c, async () => {
        const text = utf8Text(await c.req.arrayBuffer());
        if (text === undefined) throw unreadableBody('not valid UTF-8');
        refuseDuplicateKeys(text);
        (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(text);
        await next();
      });
    if (body.tooLarge) return tooLarge();
    if (body.notUtf8) {
      throw unreadableBody('not valid UTF-8');
    }
    refuseDuplicateKeys(body.text);
    // the cache holds promises at run time (hono/dist/request.js), whatever its type says
    (c.req.bodyCache as { text?: Promise<string> }).text = Promise.resolve(body.text);
    return next();
  });

  registerMemberRoutes(app);
  registerAuthRoutes(app);
  registerBookRoutes(app);
  registerLoanRoutes(app);

  // built once, at its first request (every route is registered by then), not at each: building
  // it took 20–73 ms of the event loop, and a burst of 250 anonymous requests through HAProxy
  // held both instances' health checks past their timeout, every backend empty for 2–3 s (an
  // outside check). The routes do not change while the process runs
  let openApiText: string | undefined;
  app.get('/openapi.json', (c) => {
    openApiText ??= JSON.stringify(
      app.getOpenAPI31Document({ openapi: '3.1.0', info: API_INFO, servers: API_SERVERS }),
    );
    return textBody(c, openApiText, 200, 'application/json');
  });
  // Swagger UI, pinned: from this instance when the entry gives its files, else from jsDelivr
  registerDocsRoutes(app, services.docsAssets);
  documentDocRoutes(app);

  // a known path asked with a method it has no route for: 405 with Allow, else 404; OPTIONS of a
  // known path is answered 204 with the same Allow (a preflight from an origin that
  // `cors/allowed_origins` lists was answered by the first middleware, http/cors.ts)
  app.notFound((c) => {
    // under /v1 a known tenant's shard stays named (`tenantContext` ran first): CONTRACT.md §6
    // puts `X-Shard` on every /v1 answer, a mistyped path's included
    const allow = methodsOn(c.req.path);
    if (allow.length > 0 && c.req.method === 'OPTIONS') {
      setHeader(c, 'Allow', allow.join(', '));
      return textBody(c, null, 204);
    }
    if (allow.length > 0) {
      return problemResponse(c, {
        status: 405,
        code: 'method_not_allowed',
        title: 'Method not allowed',
        detail: `${c.req.method} is not allowed on ${echoText(c.req.path)}; allowed: ${allow.join(', ')}`,
        headers: { Allow: allow.join(', ') },
      });
    }
    return problemResponse(c, {
      status: 404,
      code: 'not_found',
      title: 'Not found',
      detail: `no route for ${c.req.method} ${echoText(c.req.path)}`,
    });
  });
  app.onError(async (error, c) => {
    if (error instanceof ProblemError) return problemResponse(c, error.init);
    if (error instanceof CallerGoneError) {
      // nobody reads this answer: it is for the log, the metrics and an access log (nginx's 499)
      services.logger.info(
        { requestId: c.get('requestId'), path: c.req.path, method: c.req.method },
        `write not done: ${error.message}`,
      );
      return problemResponse(c, {
        status: 499 as 400,
        code: 'client_closed_request',
        title: 'Client closed request',
        detail: `the connection closed ${error.stage}: nothing was written`,
      });
    }
    if (error instanceof PasswordWorkBusyError) {
      // a flood's excess (the instance's password work gate): counted in
      // shardgate_password_work_refused_total, not logged one line per request. A password
      // change refused at its new password's hash has checked the current one (settled then)
      return problemResponse(c, {
        status: 503,
        code: 'server_busy',
        title: 'Server busy',
        detail: `this instance is checking as many passwords as it may at once, and this request's did not get its turn within ${error.waitedMs} ms: nothing was written; retry in ${error.retryAfterSeconds} s`,
        headers: { 'Retry-After': String(error.retryAfterSeconds) },
      });
    }
    if (error instanceof DependencyError) {
      const problem = dependencyProblem(error);
      // an open breaker or an unreachable dependency: the client may retry, say when. A refusal
      // of an open breaker is logged at debug: its opening was logged, and a warning per refused
      // request (50 a second under load) would bury everything else. The line names the answer's
      // code and the tenant: a write that waited on its own tenant's row lock (`write_contended`)
      // or found the pool full (`dependency_busy`) is not an outage, and one that may have
      // applied (`write_outcome_unknown`) is the one an operator looks for
      services.logger[error instanceof BreakerOpenError ? 'debug' : 'warn'](
        {
          requestId: c.get('requestId'),
          dependency: error.dependency,
          code: problem.code,
          tenant: c.get('tenant')?.id,
          err: error.message,
        },
        DEPENDENCY_LOG_LINE[problem.code] ?? 'dependency unavailable',
      );
      if ((error instanceof CallTimeoutError && error.mayHaveApplied) || error.outcomeUnknown)
        await services.cache.afterUncertainWrite(c.get('tenant')?.id);
      return problemResponse(c, problem);
    }
    if (error instanceof HTTPException) {
      const status = error.status;
      if (status === 415)
        return problemResponse(
          c,
          unsupportedMediaType(
            'header.Content-Type',
            'the body must be JSON, sent with Content-Type: application/json',
          ),
        );
      // Hono's validators throw a 400 only for a body that is not JSON: name the field like
      // every other 400 does, and say so when there was no body at all (read from Hono's body
      // cache: the validator has read it already)
      if (status === 400) {
        const empty = (await c.req.text().catch(() => '')).trim() === '';
        return problemResponse(
          c,
          unreadableBody(empty ? 'the body is empty: send a JSON object' : error.message || 'not JSON').init,
        );
      }
      return problemResponse(c, {
        status,
        code: `http_${status}`,
        title: error.message || 'Request failed',
      });
    }
    services.logger.error(
      { requestId: c.get('requestId'), err: loggableError(error), path: c.req.path, method: c.req.method },
      'unhandled error',
    );
    return problemResponse(c, { status: 500, code: 'internal_error', title: 'Internal server error' });
  });
  return app;
}
