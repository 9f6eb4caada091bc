import { createServer, request, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { workerHttpHandler } from './worker-http.js';

let server: Server | undefined;
afterEach(() => {
  server?.close();
});

async function serve(): Promise<{ base: string; breakers: BreakerRegistry; config: MemoryConfigStore }> {
  const config = new MemoryConfigStore({ initial: { 'breakers/rabbitmq/failure_threshold': '3' } });
  const metrics = createNoopMetrics();
  const breakers = new BreakerRegistry({ config, logger: silentLogger, metrics });
  server = createServer(workerHttpHandler({ metrics, breakers, config }));
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, breakers, config };
}

describe('the email worker HTTP port', () => {
  it('lists its breakers at /health/circuit-breakers in the API shape, with the settings in force', async () => {
    const { base, breakers } = await serve();
    breakers.get('rabbitmq', 'rabbitmq');
    breakers.get('mysql-master:shard-1', 'mysql-master');
    const r = await fetch(`${base}/health/circuit-breakers`);
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toBe('application/json');
    const body = (await r.json()) as {
      configRevision: number;
      breakers: { name: string; kind: string; state: string; settings: Record<string, number> }[];
    };
    expect(typeof body.configRevision).toBe('number');
    expect(body.breakers.map((b) => [b.name, b.kind, b.state]).sort()).toEqual([
      ['mysql-master:shard-1', 'mysql-master', 'closed'],
      ['rabbitmq', 'rabbitmq', 'closed'],
    ]);
    expect(body.breakers.find((b) => b.name === 'rabbitmq')?.settings.failure_threshold).toBe(3);
  });

  it('answers /health/config as the API instances do: a rejected key with its reason, the last good value applied', async () => {
    const { base, config } = await serve();
    config.put('breakers/rabbitmq/failure_threshold', 'abc');
    const r = await fetch(`${base}/health/config`);
    expect([r.status, r.headers.get('content-type')]).toEqual([200, 'application/json']);
    const body = (await r.json()) as {
      rejected: { key: string; reason: string }[];
      applied: { breakers: { rabbitmq: { failure_threshold: number } } };
    };
    expect(body.rejected.map((x) => x.key)).toEqual(['breakers/rabbitmq/failure_threshold']);
    expect(body.applied.breakers.rabbitmq.failure_threshold).toBe(3);
  });

  it('serves /metrics, 404 elsewhere, 204 to OPTIONS and 405 for another method, both with Allow', async () => {
    const { base } = await serve();
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: 'POST' });
    expect([post.status, post.headers.get('allow')]).toEqual([405, 'GET, HEAD, OPTIONS']);
    const options = await fetch(`${base}/metrics`, { method: 'OPTIONS' });
    expect([options.status, options.headers.get('allow'), await options.text()]).toEqual([
      204,
      'GET, HEAD, OPTIONS',
      '',
    ]);
  });

  it('answers 421 host_not_allowed to a Host http/allowed_hosts does not list, as the instances do', async () => {
    const { base, config } = await serve();
    const get = (path: string, host: string) =>
      new Promise<{ status: number; type: string | undefined; body: string }>((resolve, reject) => {
        const url = new URL(path, base);
        const req = request(
          { host: url.hostname, port: url.port, path, setHost: false, headers: { Host: host } },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              body += d;
            });
            res.on('end', () =>
              resolve({ status: res.statusCode ?? 0, type: res.headers['content-type'], body }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
    expect((await get('/health/config', 'rebound.attacker.example')).status).toBe(200);
    config.put('http/allowed_hosts', 'worker.example.com');
    for (const path of ['/health/config', '/metrics', '/health/circuit-breakers']) {
      const refused = await get(path, 'rebound.attacker.example:9464');
      expect([path, refused.status, refused.type]).toEqual([path, 421, 'application/problem+json']);
      expect(JSON.parse(refused.body)).toMatchObject({ code: 'host_not_allowed', status: 421 });
    }
    for (const host of ['worker.example.com:9464', '127.0.0.1:9464', 'localhost'])
      expect([host, (await get('/metrics', host)).status]).toEqual([host, 200]);
    // two Host headers are judged together, as at the instances (a review: the first alone was)
    const socket = connect(Number(new URL(base).port), '127.0.0.1');
    socket.end(
      'GET /metrics HTTP/1.1\r\nHost: worker.example.com\r\nHost: rebound.attacker.example\r\nConnection: close\r\n\r\n',
    );
    let answer = '';
    for await (const chunk of socket) answer += String(chunk);
    expect(answer.split('\r\n')[0]).toBe('HTTP/1.1 421 Misdirected Request');
  });
});
