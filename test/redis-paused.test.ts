/**
 * A Redis paused over and over (`CLIENT PAUSE 800 ALL`, issued again as each pause ends): most
 * commands wait out a pause and time out (the redis breaker's `call_timeout_ms`, 250 ms seeded),
 * a few slip through in the gaps. The breaker must open and cached reads go to the database.
 * Before, a success ended the count of failures in a row, which never reached
 * `failure_threshold` (5): the breaker stayed closed and the cached reads kept waiting.
 *
 * The Redis is a redis-server of this test's own (the stack's stays unpaused for the other
 * tests), and one extra API instance runs from source beside the stack with it as its Redis.
 * Its tenant is made here and removed at the end.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { binary } from '../stack/preflight.js';
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

/**
 * Each sequential read that meets a pause times out (~255 ms); after three of them the fourth
 * waits less than half the timeout for the pause to end and counts as a success: the pattern
 * that kept the breaker closed before (3 failures, 1 success, over and over; one of two runs
 * stayed closed 15 s, 19 pauses). A longer pause makes that fourth read slow, a failure too.
 */
const PAUSE_MS = 800;
const tenant = uniqueTenantId('pausedredis');
let redis: ChildProcess;
let redisPort = 0;
let base = '';

beforeAll(async () => {
  redisPort = await freePort('127.0.0.1');
  redis = spawn(
    binary('redis-server'),
    ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  const probe = new Redis({ port: redisPort, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
  probe.on('error', () => {}); // refused until the server listens
  await waitFor(async () => (await probe.ping().catch(() => '')) === 'PONG', {
    timeoutMs: 10_000,
    intervalMs: 50,
    what: "the test's redis-server answering",
  });
  probe.disconnect();
  base = await startInstanceWithRedis('pausedredis', `redis://127.0.0.1:${redisPort}`);
  await createTenant(tenant, 'shard-1');
}, 60_000);

afterAll(async () => {
  stopStartedEntries();
  redis?.kill('SIGKILL');
  await removeTenant(tenant);
});

describe('a Redis paused in a loop', () => {
  it('opens the redis breaker although some commands slip through, and it closes once Redis answers again', async () => {
    expect(etcdGet('breakers/redis/call_timeout_ms')).toBe('250');
    const { token } = await registerAndLogin(tenant, 'lib@example.com', { base });
    const path = await bookPath(tenant, token, base, 'Paused');
    // Redis works: the read is cached
    await waitFor(async () => (await api('GET', path, { tenant, base })).headers.get('x-cache') === 'HIT', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'a cached read',
    });
    expect((await redisBreaker(base))?.state).toBe('closed');

    const pauser = new Redis({ port: redisPort, host: '127.0.0.1', maxRetriesPerRequest: 0 });
    let pausing = true;
    let pauses = 0;
    const loop = (async () => {
      while (pausing) {
        await pauser.call('CLIENT', 'PAUSE', String(PAUSE_MS), 'ALL');
        pauses++;
        await new Promise((r) => setTimeout(r, PAUSE_MS));
      }
    })();
    try {
      // one read after the other, as a client that waits for each answer
      const reads: { ms: number; cache: string | null }[] = [];
      let opened = false;
      const started = performance.now();
      while (performance.now() - started < 8_000) {
        const t0 = performance.now();
        const r = await api('GET', path, { tenant, base });
        expect(r.status).toBe(200);
        reads.push({ ms: performance.now() - t0, cache: r.headers.get('x-cache') });
        if ((await redisBreaker(base))?.state !== 'closed') {
          opened = true;
          break;
        }
      }
      // some reads got their answer from Redis between pauses (else this is a plain outage)
      expect(pauses).toBeGreaterThanOrEqual(2);
      expect(reads.some((x) => x.cache === 'HIT')).toBe(true);
      const pattern = reads.map((x) => `${x.cache} ${Math.round(x.ms)} ms`).join(', ');
      expect(opened, `the breaker stayed closed through ${pauses} pauses: ${pattern}`).toBe(true);
      // open: the reads do not wait for Redis
      expect(await bypassMedianMs(tenant, path, base)).toBeLessThan(100);
    } finally {
      pausing = false;
      await loop.catch(() => {});
      pauser.disconnect();
    }
    // Redis answers again: background trials close the breaker and reads are cached again
    const seen: string[] = [];
    await waitFor(
      async () => {
        const b = await redisBreaker(base);
        const cache = (await api('GET', path, { tenant, base })).headers.get('x-cache');
        if (seen.at(-1) !== `${b?.state} ${cache}`) seen.push(`${b?.state} ${cache}`);
        return b?.state === 'closed' && cache === 'HIT';
      },
      { timeoutMs: 20_000, intervalMs: 200, what: 'the redis breaker closed and reads cached again' },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; breaker and X-Cache seen: ${seen.join(', ')}`);
    });
  });
});
