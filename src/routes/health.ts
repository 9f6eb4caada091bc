/**
 * Health endpoints (CONTRACT.md §6):
 * - `/health` liveness: 200 while the process can answer at all;
 * - `/health/ready` readiness: 503 until a first config is loaded, while draining, and for 5 s
 *   after a call failed because this process is out of file descriptors (EMFILE/ENFILE,
 *   resilience/own-resources.ts: HAProxy then sends traffic to the other instances), else 200
 *   (an open breaker does not make an instance unready: it can still serve other shards); the
 *   503 is a problem (`draining`, `config_not_loaded`, `instance_out_of_resources`) like every error;
 * - `/health/config`: revision in force, rejected keys with reasons, and the etcd link state.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { configHealth } from '../config/config-health.js';
import { withCommonResponseHeaders } from '../http/common-response-headers.js';
import { ProblemError, type ProblemInit } from '../http/problem.js';
import { jsonResponse } from '../http/response-headers.js';
import type { ShortageSeen } from '../resilience/own-resources.js';
import { dateTime, problemContent } from './schemas.js';

const statusBody = z.object({ status: z.string() }).openapi('HealthStatus');

/** /health/ready's 503s; a load balancer looks at the status only */
const DRAINING: ProblemInit = {
  status: 503,
  code: 'draining',
  title: 'Not ready',
  detail: 'this instance is shutting down (SIGTERM): send requests to another',
};
const CONFIG_NOT_LOADED: ProblemInit = {
  status: 503,
  code: 'config_not_loaded',
  title: 'Not ready',
  detail: 'this instance has not read its config from etcd yet',
  headers: { 'Retry-After': '1' },
};

/** /health/ready's 503 while this process is short of file descriptors (own-resources.ts) */
export function outOfResources(short: ShortageSeen): ProblemInit {
  const what = short.code === 'EMFILE' ? 'file descriptors' : "the system's file table";
  const limit = short.softLimit === undefined ? '' : ` (soft limit on open files: ${short.softLimit})`;
  return {
    status: 503,
    code: 'instance_out_of_resources',
    title: 'Not ready',
    detail: `this instance ran out of ${what}${limit} ${Math.round(short.agoMs / 100) / 10} s ago (${short.code}): it cannot open connections to its dependencies; send requests to another`,
    headers: { 'Retry-After': '5' },
  };
}

const configBody = z
  .object({
    revision: z.number().int(),
    etcdRevision: z.number().int().optional(),
    loaded: z.boolean(),
    connected: z.boolean(),
    disconnectedSince: dateTime.optional(),
    source: z.string(),
    lastError: z.string().optional(),
    refused: z.string().optional().openapi({
      description:
        "a call of this process that etcd refuses for want of credentials or permission, and etcd's line (`instance registration: etcd refused: …`); the config watch may still run (`connected: true`) on a stream opened before etcd's auth was enabled. Gone once that call succeeds again",
    }),
    refusedSince: dateTime.optional(),
    loadedAt: dateTime.optional(),
    lastChangeAt: dateTime.optional(),
    rejected: z.array(z.object({ key: z.string(), reason: z.string() })),
    applied: z.record(z.string(), z.unknown()),
  })
  .openapi('ConfigHealth');

const breakerBody = z
  .object({
    configRevision: z.number().int(),
    breakers: z.array(
      z.object({
        name: z.string(),
        kind: z.string(),
        state: z.enum(['closed', 'open', 'half_open']),
        failures: z.number().int().openapi({
          description:
            'failures less successes since the breaker last closed (never below 0); the breaker opens when it reaches failure_threshold, and while it is open or half-open each failed probe adds one. Write transactions that timed out are counted apart, in a row; the larger count is shown',
        }),
        settings: z.record(z.string(), z.number()),
        since: dateTime,
        writesOnly: z.literal(true).optional().openapi({
          description:
            'open or half-open because writes alone failed (timed out, or refused by a read-only or full server): reads still pass, writes are refused (open) or probe (half-open)',
        }),
      }),
    ),
  })
  .openapi('CircuitBreakers');

const replicationBody = z
  .object({
    shards: z.array(
      z.object({
        id: z.string(),
        master: z.object({
          name: z.string(),
          node: z.string(),
          // set while reads that may use a replica skip the master: why (shard-router.ts)
          unanswered: z.string().optional(),
        }),
        replicas: z.array(
          z.object({
            name: z.string(),
            node: z.string(),
            weight: z.number(),
            state: z.string(),
            lagSeconds: z.number().nullable(),
            lastError: z.string().optional(),
            cause: z.string().optional().openapi({
              description:
                'why reads do not go to it now, absent while admitted: lag, readmitting, lag_unknown, slow, unreachable, read_timeout, replication_stopped, ahead_of_master, not_probed',
            }),
          }),
        ),
      }),
    ),
  })
  .openapi('Replication');

/** a route of this file: unauthenticated, with the headers of every answer on each response */
const healthRoute = <R extends Parameters<typeof createRoute>[0]>(route: R) =>
  createRoute(withCommonResponseHeaders({ ...route, tags: ['health'], security: [] }));

export function registerHealthRoutes(app: OpenAPIHono<AppEnv>): void {
  app.openapi(
    healthRoute({
      method: 'get',
      path: '/health/replication',
      operationId: 'getReplicationHealth',
      summary: "This instance's view of replication: each shard's master and replicas, lag and routing state",
      responses: {
        200: {
          description: "this instance's view of every shard: replica lag and whether reads may go there",
          content: { 'application/json': { schema: replicationBody } },
        },
      },
    }),
    (c) => jsonResponse(c, { shards: c.get('services').replication.status() }, 200),
  );

  app.openapi(
    healthRoute({
      method: 'get',
      path: '/health/circuit-breakers',
      operationId: 'getCircuitBreakers',
      summary: "This instance's circuit breakers, their state and settings",
      responses: {
        200: {
          description: 'every breaker with its state and the settings in force',
          content: { 'application/json': { schema: breakerBody } },
        },
      },
    }),
    (c) => {
      const { config, breakers } = c.get('services');
      return jsonResponse(c, { configRevision: config.current().revision, breakers: breakers.list() }, 200);
    },
  );

  app.openapi(
    healthRoute({
      method: 'get',
      path: '/health',
      operationId: 'getLiveness',
      summary: 'Liveness: 200 while the process can answer',
      responses: { 200: { description: 'alive', content: { 'application/json': { schema: statusBody } } } },
    }),
    (c) => jsonResponse(c, { status: 'ok' }, 200),
  );

  app.openapi(
    healthRoute({
      method: 'get',
      path: '/health/ready',
      operationId: 'getReadiness',
      summary:
        'Readiness: 503 until a first config is loaded, while draining, and while out of file descriptors',
      responses: {
        200: { description: 'ready', content: { 'application/json': { schema: statusBody } } },
        503: {
          description:
            'not ready, as every error a problem (CONTRACT.md §6): `draining` (shutting down after SIGTERM: send requests elsewhere), `config_not_loaded` (no config read from etcd yet, with Retry-After) or `instance_out_of_resources` (a connection failed in the last 5 s because this process is out of file descriptors: EMFILE/ENFILE; with Retry-After)',
          headers: {
            'Retry-After': {
              description: 'with `config_not_loaded`: seconds until it may be ready',
              schema: { type: 'string' },
            },
          },
          content: problemContent,
        },
      },
    }),
    (c) => {
      const { config, lifecycle, breakers } = c.get('services');
      if (lifecycle.isDraining()) throw new ProblemError(DRAINING);
      if (!config.status().loaded) throw new ProblemError(CONFIG_NOT_LOADED);
      const short = breakers.shortage.current();
      if (short) throw new ProblemError(outOfResources(short));
      return jsonResponse(c, { status: 'ready' }, 200);
    },
  );

  app.openapi(
    healthRoute({
      method: 'get',
      path: '/health/config',
      operationId: 'getConfigHealth',
      summary: 'The config in force: revision, rejected keys with reasons, the etcd link state',
      responses: {
        200: { description: 'config state', content: { 'application/json': { schema: configBody } } },
      },
    }),
    (c) => jsonResponse(c, configHealth(c.get('services').config), 200),
  );
}
