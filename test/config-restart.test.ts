/**
 * "An invalid value is rejected while the last good one stays in force" (CONTRACT.md §4) across a
 * restart: an API instance that starts while a key is invalid finds the key's last good value in
 * etcd's history (src/config/etcd-config-store.ts) and enforces it, as the instances that were
 * running when the bad value came do. A key that never had a good value stays unset.
 *
 * Runs its own API instance (the source tree) beside the stack; the stack's instances are left
 * alone. Every key made here is a `tenants/t-cfgrst-…` key, removed with a single-key delete.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ExtraInstance, startExtraInstance, stopExtraInstance } from '../bench/extra-instance.js';
import { REPO_ROOT } from '../stack/paths.js';
import { api, INSTANCES } from './helpers/api.js';
import { deleteShardUnderTenant, etcdDel, etcdPut } from './helpers/etcd.js';
import { createTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const made: string[] = [];
let instance: ExtraInstance | undefined;

afterAll(async () => {
  if (instance) await stopExtraInstance(instance.child);
  for (const key of made) etcdDel(key);
});

async function rejectedAt(base: string): Promise<{ key: string; reason: string }[]> {
  return (
    (await (await fetch(`${base}/health/config`)).json()) as { rejected: { key: string; reason: string }[] }
  ).rejected;
}

const write = (tenant: string, base: string) =>
  api('POST', '/v1/members', {
    tenant,
    base,
    body: { email: `w-${Date.now()}@example.com`, name: 'W', password: 'correct horse battery' },
  });

describe('the last good value across a restart', () => {
  it('a starting instance enforces the last good value of a key that is invalid now, and a deleted shard as it was before the delete, from etcd history', async () => {
    const kept = uniqueTenantId('cfgrst');
    const never = uniqueTenantId('cfgrst');
    made.push(`tenants/${kept}`, `tenants/${never}`);
    await createTenant(kept, 'shard-1');
    etcdPut(`tenants/${kept}`, '{"shard":"shard-1","status":"readonly"}');
    etcdPut(`tenants/${kept}`, '{"shard":"shard-1","status":"frozen"}'); // not a status: rejected
    etcdPut(`tenants/${never}`, '{"shard":"shard-1","status":"nope"}'); // never had a good value

    // the running instances keep "readonly" (423 on a write), as they always did
    await waitFor(async () => (await rejectedAt(INSTANCES[0]!)).some((r) => r.key === `tenants/${kept}`), {
      timeoutMs: 2000,
      what: 'the running instance to reject the bad value',
    });
    for (const base of INSTANCES) expect((await write(kept, base)).status).toBe(423);

    // a shard deleted while a tenant is on it, after a failover moved its master: the running
    // instances keep it as it was right before the delete, the failover included (no server
    // listens on these ports: only the config is looked at)
    const shard = uniqueTenantId('cfgrst-s');
    const onShard = uniqueTenantId('cfgrst');
    made.push(deleteShardUnderTenant(shard, onShard));
    const masterPortAt = async (base: string) =>
      (
        (await (await fetch(`${base}/health/config`)).json()) as {
          applied: { shards: Record<string, { master: { port: number } }> };
        }
      ).applied.shards[shard]?.master.port;
    await waitFor(async () => (await rejectedAt(INSTANCES[0]!)).some((r) => r.key === `shards/${shard}`), {
      timeoutMs: 2000,
      what: 'the running instance to keep the deleted shard',
    });
    for (const base of INSTANCES) expect(await masterPortAt(base)).toBe(3997);
    // a new tenant put naming the kept shard after its delete: refused by the running instances
    const late = uniqueTenantId('cfgrst');
    made.push(`tenants/${late}`);
    etcdPut(`tenants/${late}`, JSON.stringify({ shard, status: 'active' }));
    const lateRefused = /is deleted \(kept only for the tenants still on it\)$/;
    await waitFor(
      async () =>
        lateRefused.test(
          (await rejectedAt(INSTANCES[0]!)).find((r) => r.key === `tenants/${late}`)?.reason ?? '',
        ),
      { timeoutMs: 2000, what: 'the running instance to refuse a new tenant on the kept shard' },
    );
    for (const base of INSTANCES)
      expect((await api('GET', '/v1/books?limit=1', { tenant: late, base })).status).toBe(404);

    // a tenant put naming a shard not there yet (refused), then the shard put (the running
    // instances take the tenant on it), then deleted under it: kept (an outside check: a fresh
    // instance served the version before, shard-1 active, and took a write the running ones
    // answered 423)
    const early = uniqueTenantId('cfgrst');
    const earlyShard = uniqueTenantId('cfgrst-s');
    made.push(`tenants/${early}`);
    await createTenant(early, 'shard-1');
    etcdPut(`tenants/${early}`, JSON.stringify({ shard: earlyShard, status: 'readonly' }));
    etcdPut(
      `shards/${earlyShard}`,
      JSON.stringify({ master: { host: '127.0.0.1', port: 3996 }, replicas: [], database: 'shardgate' }),
    );
    etcdDel(`shards/${earlyShard}`);
    await waitFor(
      async () => (await rejectedAt(INSTANCES[0]!)).some((r) => r.key === `shards/${earlyShard}`),
      {
        timeoutMs: 2000,
        what: 'the running instance to keep the shard deleted under the tenant',
      },
    );
    for (const base of INSTANCES) {
      const refused = await write(early, base);
      expect([refused.status, refused.headers.get('X-Shard')]).toEqual([423, earlyShard]);
    }

    // a fresh instance: the same, not a 404 for a tenant it would not know
    instance = await startExtraInstance({
      id: 'config-restart-test',
      nodeArgs: ['--import', 'tsx'],
      entry: join(REPO_ROOT, 'src', 'entry', 'node.ts'),
    });
    const answer = await write(kept, instance.base);
    expect([answer.status, answer.json?.code]).toEqual([423, 'tenant_readonly']);
    expect((await api('GET', '/v1/books?limit=1', { tenant: kept, base: instance.base })).status).toBe(200);
    const rejected = await rejectedAt(instance.base);
    expect(rejected.find((r) => r.key === `tenants/${kept}`)?.reason).toMatch(/; keeping last good value$/);
    // without a good value in its history the key stays unset (404), and says why
    expect(rejected.find((r) => r.key === `tenants/${never}`)?.reason).not.toMatch(/keeping/);
    expect((await api('GET', '/v1/books?limit=1', { tenant: never, base: instance.base })).status).toBe(404);
    // the deleted shard as the running instances keep it: the master after the failover
    expect(await masterPortAt(instance.base)).toBe(3997);
    expect(rejected.find((r) => r.key === `shards/${shard}`)?.reason).toMatch(/^deleted while 1 tenant/);
    // and refuses the new tenant on it as they do (before, it served it: the shard was loaded as
    // present, then counted it as one of the shard's tenants)
    expect(rejected.find((r) => r.key === `tenants/${late}`)?.reason).toMatch(lateRefused);
    expect((await api('GET', '/v1/books?limit=1', { tenant: late, base: instance.base })).status).toBe(404);
    // the tenant written before its shard: on that shard, readonly, as the running ones have it
    const early423 = await write(early, instance.base);
    expect([early423.status, early423.headers.get('X-Shard')]).toEqual([423, earlyShard]);
  });
});
