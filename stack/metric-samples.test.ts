import { describe, expect, it } from 'vitest';
import { metricSamples, metricValue } from './metric-samples.js';

/** the shapes prom-client serves: HELP/TYPE lines, a default `instance` label, histograms */
const TEXT = [
  '# HELP shardgate_cache_requests_total read-cache lookups by result (hit, miss, bypass)',
  '# TYPE shardgate_cache_requests_total counter',
  'shardgate_cache_requests_total{result="hit",instance="api-1"} 90',
  'shardgate_cache_requests_total{result="miss",instance="api-1"} 10',
  'shardgate_cache_requests_total_extra{result="hit",instance="api-1"} 1000',
  'shardgate_cache_near_hits_total{instance="api-1"} 7',
  'shardgate_config_revision 42',
  'shardgate_http_request_duration_seconds_bucket{le="0.025",instance="api-1",route="/v1/books/:id",method="GET"} 99',
  'shardgate_http_request_duration_seconds_bucket{le="+Inf",instance="api-1",route="/v1/books/:id",method="GET"} 100',
  'shardgate_http_request_duration_seconds_bucket{le="+Inf",instance="api-1",route="/v1/books",method="GET"} 500',
  'shardgate_weird{path="a\\"b\\\\c}d",instance="api-1"} +Inf',
  'nodejs_eventloop_lag_max_seconds{instance="api-1"} 0.031 1700000000000',
  '',
].join('\n');

describe('metricValue', () => {
  it('sums the samples carrying the labels asked for, whatever other labels they carry', () => {
    expect(metricValue(TEXT, 'shardgate_cache_requests_total')).toBe(100);
    expect(metricValue(TEXT, 'shardgate_cache_requests_total', { result: 'miss' })).toBe(10);
    expect(metricValue(TEXT, 'shardgate_cache_near_hits_total')).toBe(7);
  });

  it('reads a sample without labels, and ignores a timestamp after the value', () => {
    expect(metricValue(TEXT, 'shardgate_config_revision')).toBe(42);
    expect(metricValue(TEXT, 'nodejs_eventloop_lag_max_seconds')).toBe(0.031);
  });

  it('matches the whole name, not a prefix of a longer one', () => {
    expect(metricValue(TEXT, 'shardgate_cache_requests')).toBeUndefined();
    expect(metricValue(TEXT, 'shardgate_cache_requests_total', { result: 'hit' })).toBe(90);
  });

  it('answers undefined, not 0, when no sample matches', () => {
    expect(metricValue(TEXT, 'shardgate_outbox_backlog')).toBeUndefined();
    expect(metricValue(TEXT, 'shardgate_cache_requests_total', { result: 'bypass' })).toBeUndefined();
    expect(metricValue('', 'shardgate_cache_requests_total')).toBeUndefined();
  });
});

describe('metricSamples', () => {
  it('gives each sample its labels, in text order', () => {
    const buckets = metricSamples(TEXT, 'shardgate_http_request_duration_seconds_bucket', {
      route: '/v1/books/:id',
      method: 'GET',
    });
    expect(buckets.map((s) => [s.labels.le, s.value])).toEqual([
      ['0.025', 99],
      ['+Inf', 100],
    ]);
  });

  it('unescapes label values (quote, backslash) and reads +Inf', () => {
    const [weird] = metricSamples(TEXT, 'shardgate_weird');
    expect(weird).toEqual({
      labels: { path: 'a"b\\c}d', instance: 'api-1' },
      value: Number.POSITIVE_INFINITY,
    });
  });
});
