import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { createMemoryServices } from '../testing/memory-services.js';

describe('/health/circuit-breakers and /metrics', () => {
  it('lists every breaker with state, failures, settings in force and config revision', async () => {
    const services = createMemoryServices();
    services.config.put('breakers/mysql-replica/failure_threshold', '2');
    const b = services.breakers.get('mysql-replica:shard-1:0', 'mysql-replica');
    await b.execute(() => Promise.reject(new Error('x'))).catch(() => {});
    const res = await createApp(services).request('/health/circuit-breakers');
    const body = (await res.json()) as { configRevision: number; breakers: Record<string, unknown>[] };
    expect(body.configRevision).toBe(services.config.current().revision);
    expect(body.breakers).toEqual([
      {
        name: 'mysql-replica:shard-1:0',
        kind: 'mysql-replica',
        state: 'closed',
        failures: 1,
        settings: {
          failure_threshold: 2,
          reset_timeout_ms: 5000,
          half_open_max_calls: 2,
          call_timeout_ms: 2000,
        },
        since: expect.any(String),
      },
    ]);
  });

  it('answers an open breaker with 503 problem+json and Retry-After', async () => {
    const services = createMemoryServices();
    services.config.put('breakers/redis/failure_threshold', '1');
    const app = createApp(services);
    const breaker = services.breakers.get('redis', 'redis');
    app.get('/probe', () => breaker.execute(() => Promise.reject(new Error('down'))));
    // an unreachable node: the answer names the dependency, never the node's host and port
    app.get('/node', () => {
      throw new DependencyUnavailableError(
        'mysql-master:s1',
        '10.1.2.3:3306/shardgate: connect ECONNREFUSED',
      );
    });
    await app.request('/probe');
    const res = await app.request('/probe');
    expect(res.status).toBe(503);
    expect(res.headers.get('Retry-After')).toBe('5');
    expect(res.headers.get('Content-Type')).toBe('application/problem+json');
    const problem = (await res.json()) as { code: string; status: number; detail: string };
    expect(problem).toMatchObject({ code: 'dependency_unavailable', status: 503 });
    expect(problem.detail).toBe('redis is unavailable; retry in 5 s');
    const refused = (await (await app.request('/node')).json()) as { detail: string };
    expect(refused.detail).toBe('mysql-master:s1 is unavailable; retry in 1 s');
  });

  it('exposes request, breaker and event-loop metrics as Prometheus text', async () => {
    const metrics = createPromMetrics();
    const services = createMemoryServices({ metrics });
    services.breakers.get('redis', 'redis');
    const app = createApp(services);
    await app.request('/health');
    const text = await (await app.request('/metrics')).text();
    expect(text).toContain(
      'shardgate_http_request_duration_seconds_bucket{le="0.001",route="/health",method="GET",status="200"}',
    );
    expect(text).toContain('shardgate_breaker_state{breaker="redis",kind="redis"} 0');
    expect(text).toContain('# TYPE shardgate_breaker_transitions_total counter');
    expect(text).toContain('nodejs_eventloop_lag_seconds');
    // a removed breaker (its shard removed) leaves /metrics as it leaves /health/circuit-breakers;
    // before, its series stayed at its last state for good (an outside check saw one "open")
    services.breakers.get('mysql-master:s9', 'mysql-master');
    expect(await (await app.request('/metrics')).text()).toContain('breaker="mysql-master:s9"');
    services.breakers.remove('mysql-master:s9');
    const after = await (await app.request('/metrics')).text();
    expect(after).not.toContain('breaker="mysql-master:s9",kind');
    expect(after).toContain('shardgate_breaker_state{breaker="redis",kind="redis"} 0');
  });

  it('labels a request with the route it matched, also when a middleware answered it', async () => {
    const metrics = createPromMetrics();
    const app = createApp(createMemoryServices({ metrics }));
    const books = await app.request('/v1/books', { headers: { 'X-Tenant-ID': 'nobody' } });
    expect(books.status).toBe(404); // the tenant middleware's answer, before the route ran
    // a method the path has no route for is a 405 before the tenant is looked at
    expect(
      (await app.request('/v1/books', { method: 'PUT', headers: { 'X-Tenant-ID': 'nobody' } })).status,
    ).toBe(405);
    expect((await app.request('/health', { method: 'POST' })).status).toBe(405);
    const text = await (await app.request('/metrics')).text();
    const counts = text
      .split('\n')
      .filter((l) => l.startsWith('shardgate_http_request_duration_seconds_count'));
    expect(counts).toContainEqual(expect.stringContaining('route="/v1/books",method="GET",status="404"'));
    expect(counts).toContainEqual(expect.stringContaining('route="unmatched",method="POST",status="405"'));
    expect(counts).toContainEqual(expect.stringContaining('route="unmatched",method="PUT",status="405"'));
    expect(counts.some((l) => l.includes('route="/v1/*"'))).toBe(false);
  });
});
