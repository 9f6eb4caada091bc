/**
 * The Redis of the local stack has a memory bound with `volatile-ttl` (stack/redis.ts says why):
 * - the running stack's Redis reports the bound and policy of stack/redis.ts. A stack started
 *   before they existed keeps running without them (`up` leaves a healthy process alone): this
 *   check fails until that Redis is restarted (`npm run stack -- down`, then `up`);
 * - a Redis started here with the stack's own command line (redisArgs) and a small bound keeps
 *   every version key and login-throttle counter while cache entries, written through the real
 *   RedisCacheStore far beyond the bound, are evicted instead, and no write fails.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { RedisCacheStore } from '../src/cache/redis.js';
import { binary } from '../stack/preflight.js';
import { REDIS_MAXMEMORY, REDIS_MAXMEMORY_POLICY, redisArgs } from '../stack/redis.js';
import { topology } from '../stack/topology.js';

/** `CONFIG GET` of several parameters, as an object */
async function configOf(redis: Redis, ...names: string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of names) {
    const [, value] = (await redis.config('GET', name)) as [string, string];
    out[name] = value;
  }
  return out;
}

/** whether topology.host:port accepts a TCP connection */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, topology.host);
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** '256mb' → bytes, as Redis reads a memory size */
function bytes(size: string): string {
  const m = /^(\d+)(kb|mb|gb)$/.exec(size);
  if (!m) throw new Error(`unexpected size ${size}`);
  return String(Number(m[1]) * 1024 ** { kb: 1, mb: 2, gb: 3 }[m[2] as 'kb' | 'mb' | 'gb']);
}

const EXPECTED = {
  maxmemory: bytes(REDIS_MAXMEMORY),
  'maxmemory-policy': REDIS_MAXMEMORY_POLICY,
  'maxmemory-samples': '10',
};

describe('local stack: Redis memory bound', () => {
  it("the running stack's Redis has the bound and policy of stack/redis.ts", async () => {
    const redis = new Redis({ host: topology.host, port: topology.redis.port, lazyConnect: true });
    try {
      await redis.connect();
      expect(
        await configOf(redis, ...Object.keys(EXPECTED)),
        "the stack's Redis was started before stack/redis.ts bounded it: npm run stack -- down, then up",
      ).toEqual(EXPECTED);
    } finally {
      redis.disconnect();
    }
  });
});

describe('a Redis with the stack command line, under memory pressure', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterAll(() => {
    child?.kill('SIGKILL');
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('evicts cache entries, never a version key or a throttle counter, and refuses no write', async () => {
    dir = mkdtempSync(join(tmpdir(), 'shardgate-redis-'));
    const port = await freePort(topology.host);
    const maxmemory = '8mb';
    child = spawn(binary('redis-server'), redisArgs({ port, dir, maxmemory }), { stdio: 'ignore' });
    for (let i = 0; !(await accepts(port)); i++) {
      if (i > 100 || child.exitCode !== null)
        throw new Error(`redis-server did not start (${child.exitCode})`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const admin = new Redis({ host: topology.host, port });
    let store: RedisCacheStore | undefined;
    try {
      expect(await configOf(admin, ...Object.keys(EXPECTED))).toEqual({
        ...EXPECTED,
        maxmemory: bytes(maxmemory),
      });

      store = new RedisCacheStore({ url: `redis://${topology.host}:${port}` });
      // fail-fast store: a command before its connection is ready fails at once
      for (let i = 0; ; i++) {
        try {
          await store.get('probe');
          break;
        } catch (error) {
          if (i > 50) throw error;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      const ns = 'sg:{t-evict}:shard-1';
      // version keys as ReadCache raises them (VERSION_TTL_SECONDS = 24 h), throttle counters
      // with their 15-minute window, then entries (ttl_seconds 60) of ~2 KB, 5× the bound
      const versions = Array.from({ length: 300 }, (_, i) => `${ns}:v:book:${i}`);
      for (let i = 0; i < versions.length; i += 50)
        await store.raisePositions(versions.slice(i, i + 50), 'mariadb', `0-11-${i + 1}`, 24 * 3600);
      const counters = Array.from({ length: 100 }, (_, i) => `sg:login:{t-evict}:${i}`);
      for (const key of counters) await admin.set(key, '3', 'PX', 15 * 60_000);
      const payload = JSON.stringify({ d: 'x'.repeat(2000) });
      const entries = 20_000;
      for (let i = 0; i < entries; i += 500)
        await Promise.all(
          Array.from({ length: 500 }, (_, j) =>
            store!.set(`${ns}:e:books:cursor-${i + j}:0-11-1`, payload, 60),
          ),
        );

      const info = await admin.info();
      const stat = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
      // ~40 MB of entries went into 8 MB: most were evicted, and memory stayed near the bound
      expect(stat('evicted_keys')).toBeGreaterThan(entries / 2);
      expect(stat('used_memory')).toBeLessThanOrEqual(Number(bytes(maxmemory)) * 1.1);
      expect(await admin.exists(...versions)).toBe(versions.length);
      expect(await admin.exists(...counters)).toBe(counters.length);
      // the version keys still hold their positions
      expect((await store.getVersioned(versions[0]!, `${ns}:e:book:0:`, '')).version).toBe('0-11-1');
    } finally {
      await store?.close();
      admin.disconnect();
    }
  });
});
