/**
 * Issue "circuit breakers / metrics", Done-when 4: `/metrics` of a live instance parses as
 * Prometheus text exposition and contains every family the issue lists.
 */
import { describe, expect, it } from 'vitest';
import { api, INSTANCES } from './helpers/api.js';

const SAMPLE =
  /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([a-zA-Z_][a-zA-Z0-9_]*="(\\.|[^"\\])*",?)*\})? (-?[0-9.eE+-]+|NaN|\+Inf|-Inf)( -?\d+)?$/;

function parse(text: string): { types: Map<string, string>; samples: string[] } {
  const types = new Map<string, string>();
  const samples: string[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      types.set(name!, type!);
    } else if (line.startsWith('# HELP ')) {
    } else if (line.startsWith('#')) {
      throw new Error(`unexpected comment line: ${line}`);
    } else {
      if (!SAMPLE.test(line)) throw new Error(`not a Prometheus sample line: ${line}`);
      samples.push(line);
    }
  }
  return { types, samples };
}

describe('/metrics', () => {
  it('parses as Prometheus text and has every family', async () => {
    // some traffic so request, cache and breaker families have samples
    await api('GET', '/v1/books?limit=1', { tenant: 'no-such-tenant', base: INSTANCES[0] });
    await fetch(`${INSTANCES[0]}/health`);
    const res = await fetch(`${INSTANCES[0]}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('Content-Type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const { types, samples } = parse(await res.text());
    const families: [string, string][] = [
      ['shardgate_http_request_duration_seconds', 'histogram'],
      ['shardgate_breaker_state', 'gauge'],
      ['shardgate_breaker_transitions_total', 'counter'],
      ['shardgate_db_pool_connections', 'gauge'],
      ['shardgate_db_pool_queued', 'gauge'],
      ['shardgate_replica_lag_seconds', 'gauge'],
      ['shardgate_cache_requests_total', 'counter'],
      ['shardgate_outbox_backlog', 'gauge'],
      ['shardgate_config_revision', 'gauge'],
      ['shardgate_config_rejected_keys', 'gauge'],
      ['nodejs_eventloop_lag_seconds', 'gauge'],
    ];
    for (const [name, type] of families) expect(types.get(name), name).toBe(type);
    for (const name of [
      'shardgate_http_request_duration_seconds_count',
      'shardgate_breaker_state',
      'shardgate_db_pool_connections',
      'shardgate_replica_lag_seconds',
      'shardgate_outbox_backlog',
      'shardgate_config_revision',
    ]) {
      expect(
        samples.some((s) => s.startsWith(name)),
        `${name} has samples`,
      ).toBe(true);
    }
    expect(
      samples.some(
        (s) =>
          s.startsWith('shardgate_http_request_duration_seconds_count{') && s.includes('route="/health",'),
      ),
    ).toBe(true);
  });
});
