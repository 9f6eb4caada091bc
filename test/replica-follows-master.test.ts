/**
 * A replica named in a shard must replicate from that shard's master (src/routing/shard-router.ts,
 * "A replica must replicate from the shard's master"). Against the real stack: shards of their
 * own whose master is one stack shard's master and whose replica is the OTHER shard's replica.
 * - the replica's sequence number in domain 0 the higher one: it looked caught up (lag 0) and a
 *   token read of a book just created answered 404 from it (an outside check);
 * - the replica's the lower one: caught by the master's binlog state (another server id).
 * Every instance must exclude it, say why in /health/replication, and serve reads (with and
 * without the consistency token) from the master.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdDel, etcdPut } from './helpers/etcd.js';
import { rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const H = topology.host;
const made: { shard: string; tenant: string }[] = [];

interface ReplicaStatus {
  node: string;
  state: string;
  lastError?: string;
}

async function replicaStatus(base: string, shard: string): Promise<ReplicaStatus | undefined> {
  const r = await api('GET', '/health/replication', { base });
  const s = (r.json?.shards as { id: string; replicas: ReplicaStatus[] }[] | undefined)?.find(
    (x) => x.id === shard,
  );
  return s?.replicas[0];
}

/** the domain-0 sequence number of a server's position */
async function seq(port: number, variable: 'gtid_binlog_pos' | 'gtid_slave_pos'): Promise<bigint> {
  const [row] = await rootQuery<{ p: string }>(port, `SELECT @@GLOBAL.${variable} AS p`);
  const m = /(?:^|,)0-\d+-(\d+)/.exec(row?.p ?? '');
  return BigInt(m?.[1] ?? 0);
}

/** a shard of its own: one stack shard's master, the other's replica, ahead or behind it */
async function foreignShard(
  replicaIs: 'ahead' | 'behind',
): Promise<{ shard: string; tenant: string; replicaPort: number }> {
  const [a, b] = topology.shards;
  const [seqA, seqB] = [
    await seq(a!.master.port, 'gtid_binlog_pos'),
    await seq(b!.master.port, 'gtid_binlog_pos'),
  ];
  expect(seqA, 'the two shards are at the same sequence number; run again').not.toBe(seqB);
  const [further, lesser] = seqA > seqB ? [a!, b!] : [b!, a!];
  const [master, replicaOf] = replicaIs === 'ahead' ? [lesser, further] : [further, lesser];
  const replicaPort = replicaOf.replicas[0]!.port;
  const [r, m] = [await seq(replicaPort, 'gtid_slave_pos'), await seq(master.master.port, 'gtid_binlog_pos')];
  expect(replicaIs === 'ahead' ? r > m : r < m).toBe(true);
  const shard = uniqueTenantId(`foreign-${replicaIs}`).replace(/^t-/, 's-');
  const tenant = uniqueTenantId(`foreign-${replicaIs}`);
  made.push({ shard, tenant });
  etcdPut(
    `shards/${shard}`,
    JSON.stringify({
      master: { host: H, port: master.master.port },
      replicas: [{ host: H, port: replicaPort, weight: 1 }],
      database: 'shardgate',
    }),
  );
  await createTenant(tenant, shard);
  return { shard, tenant, replicaPort };
}

afterAll(() => {
  for (const { shard, tenant } of made) {
    removeTenant(tenant);
    etcdDel(`shards/${shard}`);
  }
});

describe('a replica that does not replicate from its shard master', () => {
  it.each([
    { replicaIs: 'ahead', words: 'ahead of' },
    { replicaIs: 'behind', words: 'behind' },
  ] as const)("its sequence number $words the master's: excluded by every instance, with the reason, and reads go to the master", async ({
    replicaIs,
  }) => {
    const { shard, tenant, replicaPort } = await foreignShard(replicaIs);
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((b) => replicaStatus(b, shard)))).every(
          (r) => r?.state === 'excluded',
        ),
      { timeoutMs: 10_000, intervalMs: 100, what: `the replica of ${shard} excluded on every instance` },
    );
    for (const base of INSTANCES) {
      const status = await replicaStatus(base, shard);
      expect(status?.node).toBe(`${H}:${replicaPort}/shardgate`);
      expect(status?.lastError).toMatch(/ahead of the master's.*does not replicate from this master/);
    }

    const { token } = await registerAndLogin(tenant, `lib-${tenant}@example.com`);
    for (let i = 0; i < 10; i++) {
      const created = await api('POST', '/v1/books', {
        tenant,
        token,
        body: { isbn: '0306406152', title: `Foreign ${i}`, author: 'A', copies: 1 },
      });
      expect(created.status).toBe(201);
      const consistency = created.headers.get('X-Consistency-Token')!;
      for (const base of INSTANCES) {
        const withToken = await api('GET', `/v1/books/${created.json.id}`, {
          tenant,
          token,
          base,
          headers: { 'X-Consistency-Token': consistency },
        });
        expect(withToken.status, withToken.text).toBe(200);
        expect(withToken.headers.get('X-Read-From')).toBe('master');
        const list = await api('GET', '/v1/books?limit=20', { tenant, token, base });
        expect(list.status).toBe(200);
        expect(list.headers.get('X-Read-From')).toBe('master');
      }
    }
    // still excluded: its lag reads 0 or near it all along, so it would otherwise be back
    for (const base of INSTANCES) expect((await replicaStatus(base, shard))?.state).toBe('excluded');
  }, 30_000);
});
