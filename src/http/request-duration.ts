/**
 * `shardgate_http_request_duration_seconds{route,method,status}`: every answered request, by
 * route template (never the path itself, so ids cannot explode the label set), method and status.
 * Declared by createApp and by the Node entry's refusals before Hono (entry/raw-request-guard.ts,
 * entry/client-error.ts); `Metrics` families are idempotent by name, so both observe one family.
 */
import type { HistogramHandle, Metrics } from '../observability/metrics.js';

/** the route label of a request no route serves (404, 405, and every refusal before Hono) */
export const UNMATCHED_ROUTE = 'unmatched';

export function requestDurationHistogram(metrics: Metrics): HistogramHandle {
  return metrics.histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template, method and status',
    labelNames: ['route', 'method', 'status'],
  });
}
