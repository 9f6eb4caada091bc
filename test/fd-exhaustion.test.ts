/**
 * An API instance out of file descriptors (resilience/own-resources.ts), against real processes:
 * one extra instance from source beside the stack, its limit lowered after start
 * (`prlimit --pid <pid> --nofile=N:N`, N a few above the descriptors it holds) and idle client
 * sockets holding the rest, as an outside check did. Its new MariaDB connections then fail with
 * EMFILE. Before, the master's breaker opened on them (and flapped), writes answered 503
 * `dependency_unavailable` naming the master, and `/health/ready` stayed 200, so HAProxy kept
 * sending traffic. Now: the breaker is not counted against, writes answer 503
 * `instance_out_of_resources` with Retry-After, `/health/ready` answers 503 naming it, and once
 * the sockets are closed writes are 201 again. Its Redis connections, dropped while it is short,
 * cannot reconnect: the cache's and the login throttle's commands fail meanwhile, and the `redis`
 * breaker does not count that (before: it opened after 5).
 *
 * The test's own requests go over keep-alive connections opened before the limit is lowered (a
 * new one would not be accepted meanwhile); the idle sockets are closed well before the
 * instance's 15 s request timeout would close them.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { stackEnv } from '../stack/stack-env.js';
import { api, registerAndLogin } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { killRedisConnections, redisLocalPorts, redisSockets } from './helpers/redis-sockets.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const tenant = uniqueTenantId('fdout');
const agent = new Agent({ keepAlive: true, maxSockets: 8 });
const idle: Socket[] = [];

afterAll(() => {
  for (const s of idle) s.destroy();
  agent.destroy();
  stopStartedEntries();
  removeTenant(tenant);
});

interface Answer {
  status: number;
  text: string;
  headers: Record<string, string | string[] | undefined>;
  json: { code?: string; detail?: string; breakers?: { name: string; state: string; failures: number }[] };
}

function call(
  port: number,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
) {
  return new Promise<Answer>((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method,
        path,
        agent,
        headers: { ...headers, ...(data ? { 'content-type': 'application/json' } : {}) },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += String(d);
        });
        res.on('end', () => {
          let json = {};
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode ?? 0, text, headers: res.headers, json });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;
describe('an instance out of file descriptors', () => {
  it('is not ready, answers instance_out_of_resources without opening its master breaker, and recovers', async () => {
    const port = await freePort('127.0.0.1');
    const instance = startEntry('src/entry/node.ts', {
      ...stackEnv(),
      SHARDGATE_INSTANCE_ID: `fdout-${port}`,
      SHARDGATE_LISTEN_HOST: '127.0.0.1',
      PORT: String(port),
      SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
      SHARDGATE_DRAIN_MS: '0',
      LOG_LEVEL: 'silent',
    });
    const pid = instance.child.pid!;
    await waitFor(
      async () => {
        if (instance.child.exitCode !== null) throw new Error(`exited: ${instance.stderr()}`);
        return (await call(port, 'GET', '/health/ready').catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the instance ready' },
    );
    // the tenant, known to this instance (not waited for on the stack's instances: one may be
    // down for another reason, and this test needs only its own)
    const created = ctl(['tenants', 'create', tenant, '--shard', 'shard-1']);
    expect(created.code, created.stderr).toBe(0);
    const base = `http://127.0.0.1:${port}`;
    await waitFor(async () => (await api('GET', '/v1/books', { tenant, base })).status === 200, {
      timeoutMs: 10_000,
      intervalMs: 100,
      what: 'the tenant known to the instance',
    });
    const { token } = await registerAndLogin(tenant, 'librarian@fd.example', { base });
    let n = 0;
    const write = () =>
      call(
        port,
        'POST',
        '/v1/books',
        { isbn: '9780306406157', title: `fd ${n++}`, author: 'Descriptors', copies: 1 },
        { 'x-tenant-id': tenant, authorization: `Bearer ${token}` },
      );
    // the master works, and the test's keep-alive connections are open (8 of them)
    const first = await write();
    expect(first.status).toBe(201);
    const bookId = (first.json as { id?: string }).id!;
    await Promise.all(Array.from({ length: 8 }, () => call(port, 'GET', '/health')));
    // a few descriptors above what it holds, then idle sockets take them
    const limit = openFds(pid) + 6;
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
    await Promise.all(
      Array.from(
        { length: 30 },
        () =>
          new Promise<void>((resolve) => {
            const s = connect(port, '127.0.0.1', () => resolve());
            s.on('error', () => resolve());
            s.on('close', () => resolve());
            idle.push(s);
          }),
      ),
    );

    // writes (6 at once, new master connections needed) until one is refused for want of descriptors
    const seen: Answer[] = [];
    await waitFor(
      async () => {
        const batch = await Promise.all(Array.from({ length: 6 }, write));
        seen.push(...batch);
        return batch.some((a) => a.status === 503);
      },
      { timeoutMs: 8_000, intervalMs: 100, what: 'a write refused while out of descriptors' },
    );
    const refused = seen.filter((a) => a.status === 503);
    expect(refused.map((a) => a.json.code)).toEqual(refused.map(() => 'instance_out_of_resources'));
    expect(refused[0]!.headers['retry-after']).toBeDefined();
    expect(refused[0]!.json.detail).toMatch(/this instance ran out of file descriptors \(EMFILE\)/);
    const ready = await call(port, 'GET', '/health/ready');
    expect([ready.status, ready.json.code]).toEqual([503, 'instance_out_of_resources']);
    expect(ready.json.detail).toMatch(new RegExp(`soft limit on open files: ${limit}`));
    const breakers = (await call(port, 'GET', '/health/circuit-breakers')).json.breakers!;
    const master = breakers.find((b) => b.name === 'mysql-master:shard-1');
    expect(master?.state).toBe('closed');
    const metrics = (await call(port, 'GET', '/metrics')).text;
    expect(metrics).toMatch(
      /\nshardgate_process_descriptors_exhausted_total\{[^}]*code="EMFILE"[^}]*\} [1-9]/,
    );
    // the descriptor gauges show the shortage: the limit as lowered, and all of it open (the
    // count needs a descriptor; prom-client's froze at the count before)
    expect(/\nprocess_max_fds\{[^}]*\} (\d+)/.exec(metrics)?.[1]).toBe(String(limit));
    expect(/\nprocess_open_fds\{[^}]*\} (\d+)/.exec(metrics)?.[1]).toBe(String(limit));

    // its Redis connections dropped (CLIENT KILL) under a limit far below what it holds, so that
    // the descriptors they free do not let it reconnect: the read cache's and the login throttle's
    // commands fail while connecting fails with EMFILE, which is not Redis's failure (before: the
    // `redis` breaker counted each and opened)
    // (far below: the soft limit only, the hard one stays, so that it can be raised back without privileges)
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=16:${limit}`]);
    const redisPorts = redisLocalPorts(pid);
    expect(redisPorts.length).toBeGreaterThan(0);
    killRedisConnections(redisPorts);
    // the instance saw the kills (it holds no socket to Redis in any state), then 1 s: each client's
    // first reconnect (100 ms after the drop, failFastRedisOptions) has failed with EMFILE. A
    // command in those 100 ms fails as "Stream isn't writeable" with no connect error known yet,
    // and counts as the drop it is (CI saw 2 counted when the reads below began at once)
    await waitFor(() => redisSockets(pid, 'all').length === 0, {
      timeoutMs: 5_000,
      intervalMs: 50,
      what: "the instance's Redis sockets closed",
    });
    await new Promise((r) => setTimeout(r, 1000));
    for (let i = 0; i < 12; i++) {
      await call(port, 'GET', `/v1/books/${bookId}`, undefined, { 'x-tenant-id': tenant });
      await call(
        port,
        'POST',
        '/v1/auth/login',
        { email: 'librarian@fd.example', password: 'wrong password' },
        {
          'x-tenant-id': tenant,
        },
      );
    }
    const whileShort = (await call(port, 'GET', '/health/circuit-breakers')).json.breakers!;
    // (the read cache's check of its store, once a second, may have come in the 100 ms after the
    // drop and counted: at most that one)
    const redisBreaker = whileShort.find((b) => b.name === 'redis')!;
    expect(redisBreaker.state).toBe('closed');
    expect(redisBreaker.failures).toBeLessThanOrEqual(1);

    // the sockets go: the descriptors come back, and with them the writes
    execFileSync('prlimit', ['--pid', String(pid), `--nofile=${limit}:${limit}`]);
    for (const s of idle.splice(0)) s.destroy();
    await waitFor(async () => (await write()).status === 201, {
      timeoutMs: 20_000,
      intervalMs: 250,
      what: 'a write 201 again after the idle sockets closed',
    });
    await waitFor(async () => (await call(port, 'GET', '/health/ready')).status === 200, {
      timeoutMs: 15_000,
      intervalMs: 250,
      what: 'ready again',
    });
    const after = (await call(port, 'GET', '/health/circuit-breakers')).json.breakers!;
    expect(after.filter((b) => b.state !== 'closed').map((b) => b.name)).toEqual([]);
  });
});
