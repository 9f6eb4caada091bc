/**
 * Issue "Foundation", Done-when 2: an operator's `etcdctl put` reaches every API instance within
 * 2 s; an invalid value is rejected, listed at /health/config, and the last good value stays;
 * with etcd frozen (SIGSTOP) the instances keep answering /health and /health/ready with 200.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { etcdctlSync } from '../stack/etcdctl.js';
import { REPO_ROOT } from '../stack/paths.js';
import { stackEnv } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import { INSTANCES } from './helpers/api.js';
import { ETCD_ENDPOINT, etcdOverride, etcdPut, PREFIX } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const apis = INSTANCES;

interface ConfigHealth {
  revision: number;
  connected: boolean;
  rejected: { key: string; reason: string }[];
  applied: { breakers: Record<string, Record<string, number>> };
}

async function configOf(base: string): Promise<ConfigHealth> {
  const res = await fetch(`${base}/health/config`);
  return (await res.json()) as ConfigHealth;
}

const restores: (() => void)[] = [];
afterAll(() => {
  for (const r of restores.reverse()) r();
});

describe('live config from etcd', () => {
  it('applies a valid put on every instance within 2 s, rejects an invalid one and keeps the last good', async () => {
    restores.push(etcdOverride('breakers/redis/failure_threshold', '3'));
    await waitFor(
      async () =>
        (await Promise.all(apis.map(configOf))).every(
          (c) => c.applied.breakers.redis?.failure_threshold === 3,
        ),
      {
        what: 'threshold 3 everywhere',
      },
    );

    const started = Date.now();
    etcdPut('breakers/redis/failure_threshold', '7');
    await waitFor(
      async () =>
        (await Promise.all(apis.map(configOf))).every(
          (c) => c.applied.breakers.redis?.failure_threshold === 7,
        ),
      { timeoutMs: 2000, intervalMs: 20, what: 'failure_threshold 7 on both instances' },
    );
    expect(Date.now() - started).toBeLessThan(2000);

    etcdPut('breakers/redis/failure_threshold', 'banana');
    for (const base of apis) {
      const c = await waitFor(
        async () => {
          const c = await configOf(base);
          return c.rejected.some((r) => r.key === 'breakers/redis/failure_threshold') ? c : undefined;
        },
        { timeoutMs: 2000, what: `${base} to reject banana` },
      );
      expect(c.rejected.find((r) => r.key === 'breakers/redis/failure_threshold')?.reason).toMatch(/number/);
      expect(c.applied.breakers.redis?.failure_threshold).toBe(7);
    }
    const cb = (await (await fetch(`${apis[0]}/health/circuit-breakers`)).json()) as {
      configRevision: number;
    };
    expect(typeof cb.configRevision).toBe('number');
  });

  it('rejects a value that is not UTF-8 (CONTRACT.md §4) and keeps the last good one', async () => {
    // etcdctl cannot send such bytes; etcd's own client can
    const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    const key = 'tenants/t-utf8-live';
    const good = '{"shard":"shard-1","status":"active","name":"Lib"}';
    try {
      etcdPut(key, good);
      const bytes = Buffer.concat([
        Buffer.from('{"shard":"shard-1","status":"readonly","name":"Lib'),
        Buffer.from([0xff, 0xfe]),
        Buffer.from('"}'),
      ]);
      await client.put(`${PREFIX}${key}`).value(bytes).exec();
      for (const base of apis) {
        const c = await waitFor(
          async () => {
            const c = await configOf(base);
            return c.rejected.some((r) => r.key === key) ? c : undefined;
          },
          { timeoutMs: 2000, what: `${base} to reject the bytes` },
        );
        expect(c.rejected.find((r) => r.key === key)?.reason).toMatch(/^must be valid UTF-8/);
      }
      // the last good value stays: still active, so a read is not refused
      const r = await fetch(`${apis[0]}/v1/books?limit=1`, { headers: { 'X-Tenant-ID': 't-utf8-live' } });
      expect(r.status).toBe(200);
      // valid UTF-8 that spells U+FFFD is a valid value: it replaces the last good one
      etcdPut(key, '{"shard":"shard-1","status":"suspended","name":"Lib \uFFFD"}');
      for (const base of apis) {
        await waitFor(
          async () => {
            const c = await configOf(base);
            if (c.rejected.some((r) => r.key === key)) return undefined;
            const r = await fetch(`${base}/v1/books?limit=1`, { headers: { 'X-Tenant-ID': 't-utf8-live' } });
            return r.status === 200 ? undefined : r.status;
          },
          { timeoutMs: 2000, what: `${base} to apply the value that spells U+FFFD` },
        );
      }
    } finally {
      etcdctlSync(['del', `${PREFIX}${key}`]);
      client.close();
    }
  });

  it('an etcdctl del moves every instance to the default within 2 s and its config revision forward', async () => {
    const key = 'breakers/rabbitmq/half_open_max_calls';
    restores.push(etcdOverride(key, '4'));
    const put = await waitFor(
      async () => {
        const all = await Promise.all(apis.map(configOf));
        return all.every((c) => c.applied.breakers.rabbitmq?.half_open_max_calls === 4) ? all : undefined;
      },
      { what: 'half_open_max_calls 4 everywhere' },
    );
    const fallback = put[0]!.applied.breakers['mysql-master']?.half_open_max_calls;
    // the key just put holds the highest mod_revision: without it the revision must not go back
    const deleted = JSON.parse(etcdctlSync(['del', `${PREFIX}${key}`, '-w', 'json'])) as {
      header: { revision: string | number };
    };
    const at = Number(deleted.header.revision);
    const started = Date.now();
    await waitFor(
      async () =>
        (await Promise.all(apis.map(configOf))).every(
          (c) => c.revision >= at && c.applied.breakers.rabbitmq?.half_open_max_calls === fallback,
        ),
      { timeoutMs: 2000, intervalMs: 20, what: `revision ${at} and the default on both instances` },
    );
    expect(Date.now() - started).toBeLessThan(2000);
    for (const base of apis) {
      const cb = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
        configRevision: number;
      };
      expect(cb.configRevision).toBeGreaterThanOrEqual(at);
    }
  });

  it('keeps answering /health and /health/ready while etcd is frozen', async () => {
    const pid = Number(readFileSync(`${topology.stateDir}/pids/${topology.etcd.name}.pid`, 'utf8'));
    process.kill(pid, 'SIGSTOP');
    try {
      // long enough for gRPC keepalive (6 s + 2 s timeout) to notice the dead peer
      await new Promise((r) => setTimeout(r, 9000));
      for (const base of apis) {
        expect((await fetch(`${base}/health`)).status).toBe(200);
        expect((await fetch(`${base}/health/ready`)).status).toBe(200);
      }
      const c = await configOf(apis[0]!);
      expect(c.connected).toBe(false);
      expect(c.applied.breakers.redis?.failure_threshold).toBe(7);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitFor(async () => (await configOf(apis[0]!)).connected, {
      timeoutMs: 10_000,
      what: 'etcd reconnect',
    });
  });

  it('an instance started while etcd is unreachable answers /health 200, /health/ready 503, then 200 once etcd is back', async () => {
    const etcdPid = Number(readFileSync(`${topology.stateDir}/pids/${topology.etcd.name}.pid`, 'utf8'));
    const port = 8197;
    process.kill(etcdPid, 'SIGSTOP');
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'src', 'entry', 'node.js')], {
      env: {
        ...process.env,
        ...stackEnv(),
        PORT: String(port),
        SHARDGATE_INSTANCE_ID: 'api-late',
        LOG_LEVEL: 'warn',
      },
      stdio: 'ignore',
    });
    const base = `http://${topology.host}:${port}`;
    try {
      await waitFor(async () => (await fetch(`${base}/health`)).status === 200, {
        timeoutMs: 10_000,
        what: 'liveness',
      });
      await new Promise((r) => setTimeout(r, 1000));
      expect((await fetch(`${base}/health/ready`)).status).toBe(503);
      expect(((await (await fetch(`${base}/health/config`)).json()) as { loaded: boolean }).loaded).toBe(
        false,
      );
    } finally {
      process.kill(etcdPid, 'SIGCONT');
    }
    try {
      await waitFor(async () => (await fetch(`${base}/health/ready`)).status === 200, {
        timeoutMs: 20_000,
        intervalMs: 200,
        what: 'ready once etcd answers',
      });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
