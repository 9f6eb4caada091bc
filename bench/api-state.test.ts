/**
 * Reading an API instance's /metrics for the bench's paced rows and bench/tail.ts: the handler-time
 * histogram of book reads, event-loop lag, GC and CPU, and their sum over instances.
 */
import { describe, expect, it } from 'vitest';
import { apiSide, bookReadsOver, parseInstanceMetrics } from './api-state.js';

function metrics({ le, gcMinor, lag }: { le: Record<string, number>; gcMinor: number; lag: number }): string {
  const bucket = (bound: string, n: number, route = '/v1/books/:id') =>
    `shardgate_http_request_duration_seconds_bucket{le="${bound}",instance="api-1",route="${route}",method="GET",status="200"} ${n}`;
  return [
    '# HELP nodejs_eventloop_lag_max_seconds The maximum recorded event loop delay.',
    `nodejs_eventloop_lag_max_seconds{instance="api-1"} ${lag}`,
    'process_cpu_seconds_total{instance="api-1"} 12.5',
    `nodejs_gc_duration_seconds_sum{instance="api-1",kind="minor"} ${gcMinor}`,
    'nodejs_gc_duration_seconds_count{instance="api-1",kind="minor"} 10',
    'shardgate_cache_requests_total{result="hit",instance="api-1"} 90',
    'shardgate_cache_requests_total{result="miss",instance="api-1"} 10',
    ...Object.entries(le).map(([bound, n]) => bucket(bound, n)),
    // the same bounds on other routes and statuses are not book reads
    bucket('+Inf', 500, '/v1/books'),
    `shardgate_http_request_duration_seconds_bucket{le="+Inf",instance="api-1",route="/v1/books/:id",method="PATCH",status="200"} 7`,
  ].join('\n');
}

describe('parseInstanceMetrics', () => {
  it('reads lag, CPU, cache reads, GC by kind and the book-read histogram only', () => {
    const m = parseInstanceMetrics(
      metrics({ le: { '0.01': 95, '0.025': 99, '+Inf': 100 }, gcMinor: 0.25, lag: 0.03 }),
    );
    expect(m.lagMaxMs).toBeCloseTo(30, 6);
    expect(m.cpuSeconds).toBe(12.5);
    expect(m.cacheReads).toBe(100);
    expect(m.gc.minor).toEqual({ ms: 250, count: 10 });
    expect(m.bookReads).toEqual({ '0.01': 95, '0.025': 99, '+Inf': 100 });
  });
});

describe('bookReadsOver and apiSide', () => {
  it('count the reads between two scrapes and those over a bound, summed over instances', () => {
    const before = parseInstanceMetrics(
      metrics({ le: { '0.025': 99, '+Inf': 100 }, gcMinor: 0.25, lag: 0.001 }),
    );
    const after = parseInstanceMetrics(
      metrics({ le: { '0.025': 1097, '+Inf': 1100 }, gcMinor: 0.3, lag: 0.042 }),
    );
    expect(bookReadsOver(before, after, '0.025')).toEqual({ all: 1000, over: 2 });
    const other = parseInstanceMetrics(
      metrics({ le: { '0.025': 99, '+Inf': 100 }, gcMinor: 0.25, lag: 0.01 }),
    );
    const side = apiSide([before, other], [after, other]);
    expect(side.bookReads).toBe(1000);
    expect(side.bookReadsOver25ms).toBe(2);
    expect(side.lagMaxMs).toBeCloseTo(42, 6);
    expect(side.gcMs).toBeCloseTo(50, 6);
  });
});
