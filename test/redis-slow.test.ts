/**
 * A Redis that answers, but slowly: every command 160 ms late (a relay the test controls delays
 * each chunk 80 ms each way in front of the stack's Redis). A cached read that waits longer
 * than half the redis breaker's `call_timeout_ms` (250 ms, seeded by `init`) counts as a failure
 * (`slowFails`), so the breaker opens and reads go to the database at once. Before, every answer
 * came within the timeout: the breaker stayed closed and each cached read took ~165 ms.
 *
 * One extra API instance runs from source beside the stack (its Redis the relay); the stack's own
 * instances are left alone. Its tenant is made here and removed at the end.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { etcdGet } from './helpers/etcd.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const DELAY_MS = 80;
const tenant = uniqueTenantId('slowredis');
let relay: Server;
const sockets = new Set<Socket>();
let base = '';

beforeAll(async () => {
  const relayPort = await freePort('127.0.0.1');
  relay = createServer((client) => {
    const server = connect(topology.redis.port, topology.host);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (d) => setTimeout(() => to.writable && to.write(d), DELAY_MS));
    pipe(client, server);
    pipe(server, client);
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        client.destroy();
        server.destroy();
      });
    }
  });
  await new Promise<void>((r) => relay.listen(relayPort, '127.0.0.1', r));
  const port = await freePort('127.0.0.1');
  const instance = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    SHARDGATE_INSTANCE_ID: `slowredis-${port}`,
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
    SHARDGATE_REDIS_URL: `redis://127.0.0.1:${relayPort}`,
    SHARDGATE_DRAIN_MS: '0',
    LOG_LEVEL: 'silent',
  });
  base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (instance.child.exitCode !== null) throw new Error(`exited: ${instance.stderr()}`);
      return (await fetch(`${base}/health/ready`).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: 'the instance behind the slow Redis ready' },
  );
  await createTenant(tenant, 'shard-1');
}, 60_000);

afterAll(async () => {
  stopStartedEntries();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => relay.close(() => r()));
  await removeTenant(tenant);
});

describe('a Redis that answers slowly', () => {
  it('opens the redis breaker: cached reads go to the database at once instead of waiting for each answer', async () => {
    // the seeded timeout this relies on (a slower answer is a timeout, a failure anyway)
    expect(etcdGet('breakers/redis/call_timeout_ms')).toBe('250');
    const { token } = await registerAndLogin(tenant, 'lib@example.com', { base });
    const book = await api('POST', '/v1/books', {
      tenant,
      token,
      base,
      body: { isbn: '9780306406157', title: 'Slow', author: 'Redis', copies: 1 },
    });
    expect(book.status).toBe(201);
    const path = `/v1/books/${(book.json as { id: string }).id}`;
    const answers: { ms: number; cache: string | null }[] = [];
    const breaker = async () =>
      (
        (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
          breakers: { kind: string; state: string }[];
        }
      ).breakers.find((b) => b.kind === 'redis')?.state;
    // each answer of Redis comes after ~160 ms: a success, but over half of 250 ms
    await waitFor(
      async () => {
        const t0 = performance.now();
        const r = await api('GET', path, { tenant, base });
        expect(r.status).toBe(200);
        answers.push({ ms: performance.now() - t0, cache: r.headers.get('x-cache') });
        return (await breaker()) !== 'closed';
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'the redis breaker open' },
    );
    // open: the next reads do not wait for Redis
    const after: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await api('GET', path, { tenant, base });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-cache')).toBe('BYPASS');
      after.push(performance.now() - t0);
    }
    after.sort((a, b) => a - b);
    // the median read is well under one Redis answer (160 ms): it did not wait for one
    expect(after[10]).toBeLessThan(2 * DELAY_MS);
    expect(answers.length).toBeLessThanOrEqual(10);
  });
});
