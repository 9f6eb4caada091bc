/**
 * `shardgate-ctl` shows what the instances enforce while a key is rejected: the key's last good
 * value from etcd's history (control-plane/state-in-force.ts), as the instances keep it, not the
 * default an instance would take if the key were absent.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { deleteShardUnderTenant, ETCD_ENDPOINT, etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

// mysql-master: its breakers exist from an instance's start (a Redis one only after a first cache use)
const KEY = 'breakers/mysql-master/failure_threshold';
const before = etcdGet(KEY);

afterAll(() => {
  if (before === undefined) etcdDel(KEY);
  else etcdPut(KEY, before);
});

/** a breaker setting of `kind` an instance enforces (a Redis or RabbitMQ kind listed once used) */
async function breakerSetting(base: string, kind: string, setting: string): Promise<number | undefined> {
  const body = (await (await fetch(`${base}/health/config`)).json()) as {
    applied: { breakers: Record<string, Record<string, number>> };
  };
  return body.applied.breakers[kind]?.[setting];
}

/** the mysql-master breakers' failure_threshold an instance enforces */
async function enforced(base: string): Promise<number | undefined> {
  const body = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    breakers: { kind: string; settings: { failure_threshold: number } }[];
  };
  return body.breakers.find((b) => b.kind === 'mysql-master')?.settings.failure_threshold;
}

describe('shardgate-ctl while a key is rejected', () => {
  it('breakers get and status show the last good value the instances keep, and say the key is rejected', async () => {
    const good = before === '9' ? 8 : 9;
    etcdPut(KEY, String(good));
    await waitFor(async () => (await enforced(INSTANCES[0]!)) === good, {
      timeoutMs: 2000,
      what: `the instances to apply ${good}`,
    });
    etcdPut(KEY, 'abc');
    await waitFor(
      async () =>
        (
          (await (await fetch(`${INSTANCES[0]}/health/config`)).json()) as { rejected: { key: string }[] }
        ).rejected.some((r) => r.key === KEY),
      { timeoutMs: 2000, what: 'the instances to reject "abc"' },
    );
    for (const base of INSTANCES) expect(await enforced(base)).toBe(good);

    const json = ctl(['breakers', 'get', 'mysql-master', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(JSON.parse(json.stdout)['mysql-master'].failure_threshold).toEqual({
      value: good,
      source: 'mysql-master',
      rejected: 'abc',
    });
    const text = ctl(['breakers', 'get', 'mysql-master']);
    expect(text.stdout).toContain(
      `failure_threshold    ${String(good).padEnd(8)} (mysql-master; its last good value: etcd holds "abc", which the instances reject)`,
    );
    const status = ctl(['status', '--json']);
    expect(status.code, status.stderr).toBe(0);
    const view = JSON.parse(status.stdout) as {
      breakers: { 'mysql-master': { failure_threshold: number } };
      rejected: { key: string; reason: string }[];
    };
    expect(view.breakers['mysql-master'].failure_threshold).toBe(good);
    expect(view.rejected.find((r) => r.key === KEY)?.reason).toMatch(/; keeping last good value$/);
  });
  it('breakers get says so when a kind’s key is rejected with no good value in etcd’s history: the next key applies', () => {
    const key = 'breakers/rabbitmq/failure_threshold';
    const saved = etcdGet(key);
    try {
      etcdDel(key); // a fresh key: none of its versions is a good value
      etcdPut(key, 'abc');
      const json = ctl(['breakers', 'get', 'rabbitmq', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const v = JSON.parse(json.stdout).rabbitmq.failure_threshold as { source: string; ignored?: unknown };
      expect(v.ignored).toEqual({ key, value: 'abc' });
      expect(['default', 'built-in']).toContain(v.source);
      const text = ctl(['breakers', 'get', 'rabbitmq']);
      expect(text.stdout).toContain(
        `; etcd holds "abc" at ${key}, which the instances reject, with no good value left in etcd's history`,
      );
    } finally {
      if (saved === undefined) etcdDel(key);
      else etcdPut(key, saved);
    }
  });

  it('after a compaction took the last good value from etcd, breakers get and status show what the instances keep, not the next key down', async () => {
    // an outside check: `breakers get` and `status` printed 2000 while every process enforced 250
    const key = 'breakers/rabbitmq/failure_threshold';
    const saved = etcdGet(key);
    const client = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
    const kept = 7; // neither the built-in default (5) nor the stack's breakers/default value
    try {
      etcdPut(key, String(kept));
      await waitFor(
        async () => (await breakerSetting(INSTANCES[0]!, 'rabbitmq', 'failure_threshold')) === kept,
        { timeoutMs: 2000, what: `the instances to apply ${kept}` },
      );
      etcdPut(key, 'abc');
      await waitFor(
        async () => {
          const rejected = await Promise.all(
            INSTANCES.map(async (base) =>
              (
                (await (await fetch(`${base}/health/config`)).json()) as { rejected: { key: string }[] }
              ).rejected.some((r) => r.key === key),
            ),
          );
          return rejected.every(Boolean);
        },
        { timeoutMs: 2000, what: 'the instances to reject "abc"' },
      );
      const { header } = await client.get('/').exec();
      await client.kv.compact({ revision: header.revision });
      for (const base of INSTANCES)
        expect(await breakerSetting(base, 'rabbitmq', 'failure_threshold')).toBe(kept);

      const json = ctl(['breakers', 'get', 'rabbitmq', '--json']);
      expect(json.code, json.stderr).toBe(0);
      const v = JSON.parse(json.stdout).rabbitmq.failure_threshold as {
        ignored?: unknown;
        enforced?: { value: number; by: string[] }[];
      };
      expect(v.ignored).toEqual({ key, value: 'abc' });
      expect(v.enforced).toEqual([{ value: kept, by: ['api-1', 'api-2'] }]);
      // before: the next key down's value, with nothing saying the instances enforce another
      const text = ctl(['breakers', 'get', 'rabbitmq']);
      expect(text.stdout).toMatch(
        new RegExp(
          `failure_threshold +${kept} .*the running instances enforce ${kept} \\(api-1, api-2\\), kept from before`,
        ),
      );
      const status = ctl(['status', '--json']);
      expect(status.code, status.stderr).toBe(0);
      const differences = (
        JSON.parse(status.stdout) as {
          appliedDifferences: { setting: string; enforced: { value: string; by: string[] }[] }[];
        }
      ).appliedDifferences.find((d) => d.setting === 'breakers.rabbitmq.failure_threshold');
      expect(differences?.enforced[0]).toMatchObject({ value: String(kept) });
      expect(differences?.enforced[0]?.by.slice(0, 2)).toEqual(['api-1', 'api-2']);
      expect(ctl(['status']).stdout).toMatch(
        new RegExp(
          `! breakers\\.rabbitmq\\.failure_threshold: api-1, api-2.* enforce ${kept}, where etcd's keys give`,
        ),
      );
    } finally {
      if (saved === undefined) etcdDel(key);
      else etcdPut(key, saved);
      client.close();
    }
  });

  it('shards list shows a shard deleted under a tenant as the instances keep it, the failover before the delete included', async () => {
    const shard = uniqueTenantId('inforce-s');
    const tenant = uniqueTenantId('inforce');
    const tenantKey = deleteShardUnderTenant(shard, tenant);
    try {
      const r = ctl(['shards', 'list', '--json']);
      expect(r.code, r.stderr).toBe(0);
      const row = (
        JSON.parse(r.stdout) as { id: string; master: { port: number }; rejected?: string }[]
      ).find((x) => x.id === shard);
      expect(row).toMatchObject({
        master: { port: 3997 },
        tenants: 1,
        rejected: 'deleted while 1 tenant(s) still on it; keeping it',
      });
      expect(ctl(['shards', 'list']).stdout).toMatch(
        new RegExp(
          `${shard} +master 127\\.0\\.0\\.1:3997 .*tenants 1 \\(its key is rejected: deleted while 1 tenant\\(s\\) still on it; keeping it\\)`,
        ),
      );
      // its tenant is one the instances serve: shown without a problem, its status can be set
      const shown = ctl(['tenants', 'show', tenant, '--json']);
      expect(JSON.parse(shown.stdout)).toMatchObject({ id: tenant, shard, status: 'active' });
      expect(JSON.parse(shown.stdout).problem).toBeUndefined();
      // config apply judges a change of it the same way (the file names no revision: a warning)
      const file = join(mkdtempSync(join(tmpdir(), 'sg-inforce-')), 'tenant.json');
      writeFileSync(file, JSON.stringify({ tenants: { [tenant]: { shard, status: 'suspended' } } }));
      const applied = ctl(['config', 'apply', '-f', file, '--dry-run']);
      expect(applied.code, applied.stderr).toBe(0);
      expect(applied.stdout).toContain(`tenants/${tenant}`);
      const set = ctl(['tenants', 'set-status', tenant, 'readonly']);
      expect([set.code, set.stderr]).toEqual([0, '']);
      expect(set.stdout).toContain(`tenant ${tenant}: active -> readonly`);
    } finally {
      etcdDel(tenantKey);
    }
  });
});
