/**
 * A Redis that answers, but slowly: every command 160 ms late (a relay the test controls delays
 * each chunk 80 ms each way in front of the stack's Redis). A cached read that waits longer
 * than half the redis breaker's `call_timeout_ms` (250 ms, seeded by `init`) counts as a failure
 * (`slowFails`), so the breaker opens and reads go to the database at once. Before, every answer
 * came within the timeout: the breaker stayed closed and each cached read took ~165 ms.
 *
 * One extra API instance runs from source beside the stack (its Redis the relay); the stack's own
 * instances are left alone. Its tenant is made here and removed at the end. Nothing synchronous
 * (a child process run to its end) may run in this process once the instance starts: the relay
 * would stop meanwhile.
 */
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { etcdGet } from './helpers/etcd.js';
import {
  bookPath,
  bypassMedianMs,
  redisBreaker,
  startInstanceWithRedis,
} from './helpers/instance-with-redis.js';
import { stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const DELAY_MS = 80;
const tenant = uniqueTenantId('slowredis');
let relay: Server;
const sockets = new Set<Socket>();
let base = '';
/**
 * bytes the instance sent to Redis through the relay, leaving out the near cache's invalidation
 * connection (the one that sent SUBSCRIBE: it PINGs every 200 ms whatever the reads do)
 */
let commandBytes = 0;
/** the start of each of those chunks, to name in a failure what was sent */
const commandsSeen: string[] = [];
/** the instance's connections (not the invalidation one) whose ready check was answered */
const readyConnections = new Set<Socket>();

beforeAll(async () => {
  const relayPort = await freePort('127.0.0.1');
  relay = createServer((client) => {
    const server = connect(topology.redis.port, topology.host);
    const pipe = (from: Socket, to: Socket) =>
      from.on('data', (d) => setTimeout(() => to.writable && to.write(d), DELAY_MS));
    let subscriber = false;
    client.on('data', (d: Buffer) => {
      if (/subscribe/i.test(d.toString('latin1'))) subscriber = true;
      if (!subscriber) {
        commandBytes += d.length;
        commandsSeen.push(d.toString('latin1').slice(0, 80));
      }
    });
    pipe(client, server);
    pipe(server, client);
    // ready (ioredis' ready check, INFO, answered): the instance sends its commands from then on
    let infoSent = false;
    client.on('data', (d: Buffer) => {
      if (/\binfo\r\n/i.test(d.toString('latin1'))) infoSent = true;
    });
    server.on('data', () => {
      if (infoSent && !subscriber) setTimeout(() => readyConnections.add(client), DELAY_MS);
    });
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
  // the seeded timeout this relies on (a slower answer is a timeout, a failure anyway)
  expect(etcdGet('breakers/redis/call_timeout_ms')).toBe('250');
  // the tenant first: `shardgate-ctl` runs synchronously and would freeze the relay (it lives in
  // this process) while the instance's Redis connections shake hands: 1 s without an answer,
  // and the instance rightly replaces them (CI saw a login's throttle delete re-sent late)
  await createTenant(tenant, 'shard-1');
  base = await startInstanceWithRedis('slowredis', `redis://127.0.0.1:${relayPort}`);
  // /health/ready does not wait for Redis (a cache, bypassed when down): with every answer 160 ms
  // late the instance's two connections (the cache's, the login throttle's) need ~0.5 s more, and
  // commands before that fail at once, not slowly (a login's throttle delete then went late)
  await waitFor(() => readyConnections.size >= 2, {
    timeoutMs: 10_000,
    what: "the instance's two Redis connections ready",
  });
}, 60_000);

afterAll(async () => {
  stopStartedEntries();
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => relay.close(() => r()));
  await removeTenant(tenant);
});

describe('a Redis that answers slowly', () => {
  it('opens the redis breaker: cached reads go to the database at once instead of waiting for each answer', async () => {
    const { token } = await registerAndLogin(tenant, 'lib@example.com', { base });
    const path = await bookPath(tenant, token, base, 'Slow');
    const answers: { status: number; cache: string | null }[] = [];
    const breaker = async () => (await redisBreaker(base))?.state;
    // each answer of Redis comes after ~160 ms: a success, but over half of 250 ms
    await waitFor(
      async () => {
        const r = await api('GET', path, { tenant, base });
        answers.push({ status: r.status, cache: r.headers.get('x-cache') });
        return (await breaker()) !== 'closed';
      },
      { timeoutMs: 10_000, intervalMs: 10, what: 'the redis breaker open' },
    );
    // every read answered while Redis was slow, also those that opened the breaker
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    expect(answers.length).toBeLessThanOrEqual(10);
    // opened by slow answers, not by commands refused at once (a connection not ready yet)
    expect(
      answers.some((a) => a.cache !== 'BYPASS'),
      JSON.stringify(answers),
    ).toBe(true);
    // open: the next reads (each a 200 with X-Cache: BYPASS) do not call Redis at all
    const before = commandBytes;
    const seenBefore = commandsSeen.length;
    expect(before, 'the counter sees the reads that did call Redis').toBeGreaterThan(0);
    const medianMs = await bypassMedianMs(tenant, path, base);
    expect(
      commandBytes - before,
      `bytes sent to Redis during 20 reads with the breaker open: ${JSON.stringify(commandsSeen.slice(seenBefore))}`,
    ).toBe(0);
    console.log(`redis-slow: median read with the breaker open ${medianMs.toFixed(1)} ms`);
  });
});
