/**
 * A wall clock stepped back (NTP, `date -s`) while a breaker is open does not keep it open: the
 * open spell is timed on the monotonic clock (circuit-breaker.ts), and `since` still shows the
 * wall time. Before, a Redis breaker opened, the clock stepped back an hour, and Redis back: the
 * breaker stayed `open` for that hour (cached reads BYPASS, the login throttle failing open).
 *
 * One extra API instance from source beside the stack, under libfaketime with only its wall clock
 * faked (`FAKETIME_DONT_FAKE_MONOTONIC=1`), read from a file this test writes (`+0`, then `-1h`),
 * and a redis-server of this test's own, killed and started again on its port (as
 * breaker-reconnect.test.ts). The stack's processes and clocks are left alone. libfaketime is
 * Debian's `faketime` package (.ci/run installs it): without it this test fails, it does not skip.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { newId } from '../src/domain/ids.js';
import { api } from './helpers/api.js';
import { etcdGet } from './helpers/etcd.js';
import { redisBreaker, startInstanceWithRedis } from './helpers/instance-with-redis.js';
import { libfaketime } from './helpers/libfaketime.js';
import { redisAnswers, startRedis } from './helpers/redis-server.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { stopStartedEntries } from './helpers/start-entry.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const HOUR_MS = 3_600_000;
const tenant = uniqueTenantId('clockstep');
const dir = mkdtempSync(join(tmpdir(), 'shardgate-clockstep-'));
const clockFile = join(dir, 'faketime');
let redis: ChildProcess | undefined;

/** how far the instance's wall clock is behind this process's (ms), from its `Date` header (1 s steps) */
async function behindMs(base: string): Promise<number> {
  const date = (await fetch(`${base}/health/live`)).headers.get('date');
  return Date.now() - Date.parse(date!);
}

afterAll(async () => {
  stopStartedEntries();
  redis?.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
  removeTenant(tenant);
  await rootQuery(node('shard-2', 'master').port, 'DELETE FROM books WHERE tenant_id = ?', [tenant]);
});

describe('a wall clock stepped back while a breaker is open', () => {
  it('redis: the breaker leaves open within its reset time once Redis is back, and `since` shows the stepped wall time', async () => {
    const resetMs = Number(
      etcdGet('breakers/redis/reset_timeout_ms') ?? etcdGet('breakers/default/reset_timeout_ms'),
    );
    expect(resetMs).toBeGreaterThanOrEqual(1000);
    writeFileSync(clockFile, '+0\n');
    const port = await freePort('127.0.0.1');
    redis = startRedis(port);
    await redisAnswers(port);
    const base = await startInstanceWithRedis('clockstep', `redis://127.0.0.1:${port}`, {
      LD_PRELOAD: libfaketime(),
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_NO_CACHE: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    });
    expect(Math.abs(await behindMs(base))).toBeLessThan(2000);
    await createTenant(tenant, 'shard-2');
    const id = newId();
    await rootQuery(
      node('shard-2', 'master').port,
      `INSERT INTO books (tenant_id, id, isbn, title, author, copies, available, created_at, updated_at)
       VALUES (?, ?, '9780306406157', 'Clock', 'Step', 1, 1, NOW(3), NOW(3))`,
      [tenant, id],
    );
    const path = `/v1/books/${id}`;
    await waitFor(async () => (await api('GET', path, { tenant, base })).headers.get('x-cache') === 'HIT', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'a cached read',
    });

    redis.kill('SIGKILL');
    await waitFor(
      async () => {
        expect((await api('GET', path, { tenant, base })).status).toBe(200);
        return (await redisBreaker(base))?.state === 'open';
      },
      { timeoutMs: 10_000, intervalMs: 20, what: 'the redis breaker open' },
    );
    // the instance's wall clock goes back an hour (its monotonic clock does not move)
    writeFileSync(clockFile, '-1h\n');
    await waitFor(async () => Math.abs((await behindMs(base)) - HOUR_MS) < 2000, {
      timeoutMs: 5000,
      intervalMs: 100,
      what: "the instance's wall clock an hour behind (libfaketime preloaded)",
    });
    redis = startRedis(port);
    await redisAnswers(port);
    const backAt = performance.now();
    // on Date.now, it stayed open for the hour the clock went back
    const left = await waitFor(
      async () => {
        const b = (await redisBreaker(base)) as { state: string; since: string } | undefined;
        return b && b.state !== 'open' ? { ...b, at: performance.now() } : undefined;
      },
      { timeoutMs: resetMs + 10_000, intervalMs: 20, what: 'the redis breaker out of open' },
    );
    expect(left.at - backAt).toBeLessThan(resetMs);
    // `since`: the instance's wall time at the transition, an hour behind this process's
    expect(Math.abs(Date.now() - Date.parse(left.since) - HOUR_MS)).toBeLessThan(10_000);
    await waitFor(async () => (await api('GET', path, { tenant, base })).headers.get('x-cache') === 'HIT', {
      timeoutMs: 10_000,
      intervalMs: 50,
      what: 'reads cached again',
    });
  });
});
