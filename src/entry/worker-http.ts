/**
 * The email worker's HTTP port (SHARDGATE_WORKER_METRICS_PORT): `GET /metrics` (Prometheus text),
 * `GET /health/circuit-breakers`, the worker's own breakers — `rabbitmq` and
 * `mysql-master:<shard>` for the outbox — in the shape the API instances answer there
 * (CONTRACT.md §6), so every dependency call's breaker is visible somewhere, and `GET
 * /health/config` as the instances answer it (a value the worker rejected was in its log only: an
 * outside check). Anything else is 404;
 * OPTIONS is 204 and a method other than GET or HEAD 405, both with `Allow`. A `Host` that
 * `http/allowed_hosts` does not list gets 421 `host_not_allowed` first, as at the instances (a
 * page that rebound its name to the worker's address would read its metrics and config).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { configHealth } from '../config/config-health.js';
import type { ConfigStore } from '../config/interface.js';
import { hostRefusal } from '../http/host-check.js';
import { PROBLEM_TYPE_BASE } from '../http/problem.js';
import type { Metrics } from '../observability/metrics.js';
import type { BreakerRegistry } from '../resilience/breaker-registry.js';

const ALLOW = 'GET, HEAD, OPTIONS';
const PATHS = new Set(['/metrics', '/health/circuit-breakers', '/health/config']);

export function workerHttpHandler({
  metrics,
  breakers,
  config,
}: {
  metrics: Metrics;
  breakers: BreakerRegistry;
  config: ConfigStore;
}): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    // every Host header, joined: two never match a name (this port has no raw-request guard's 400)
    const host = req.headersDistinct.host?.join(', ');
    const misdirected = hostRefusal(host, config.current().http.allowedHosts, req.url);
    if (misdirected) {
      const { status, code, title, detail } = misdirected;
      res
        .writeHead(status, { 'Content-Type': 'application/problem+json', 'Cache-Control': 'no-store' })
        .end(JSON.stringify({ type: `${PROBLEM_TYPE_BASE}${code}`, title, status, detail, code }));
      return;
    }
    const path = req.url?.split('?')[0] ?? '';
    if (!PATHS.has(path)) {
      res
        .writeHead(404, { 'Content-Type': 'text/plain' })
        .end('not found; GET /metrics, /health/circuit-breakers or /health/config\n');
      return;
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { Allow: ALLOW }).end();
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { 'Content-Type': 'text/plain', Allow: ALLOW }).end('method not allowed\n');
      return;
    }
    if (path === '/metrics') {
      const { contentType, body } = await metrics.render();
      res.writeHead(200, { 'Content-Type': contentType }).end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    const body = JSON.stringify(
      path === '/health/config'
        ? configHealth(config)
        : { configRevision: config.current().revision, breakers: breakers.list() },
    );
    res
      .writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' })
      .end(req.method === 'HEAD' ? undefined : body);
  };
}
