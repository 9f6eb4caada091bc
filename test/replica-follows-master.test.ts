/**
 * A replica named in a shard must replicate from that shard's master (src/routing/shard-router.ts,
 * "A replica must replicate from the shard's master"). Against the real stack: a shard of its own
 * whose master is one stack shard's master and whose replica is the OTHER shard's replica, chosen
 * so that the replica's sequence number in domain 0 is the higher one — it looked caught up
 * (lag 0) and a token read of a book just created answered 404 from it (an outside check).
 * Every instance must exclude it, say why in /health/replication, and serve reads (with and
 * without the consistency token) from the master.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { etcdDel, etcdPut } from './helpers/etcd.js';
import { rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const shard = uniqueTenantId('foreign').replace(/^t-/, 's-');
const tenant = uniqueTenantId('foreign');
const H = topology.host;

interface ReplicaStatus {
  node: string;
  state: string;
  lastError?: string;
}

async function replicaStatus(base: string): Promise<ReplicaStatus | undefined> {
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

let masterPort = 0;
let replicaPort = 0;

beforeAll(async () => {
  const [a, b] = topology.shards;
  // the replica of the shard whose master is further along, under the other shard's master
  const [seqA, seqB] = [
    await seq(a!.master.port, 'gtid_binlog_pos'),
    await seq(b!.master.port, 'gtid_binlog_pos'),
  ];
  expect(seqA, 'the two shards are at the same sequence number; run again').not.toBe(seqB);
  const [ahead, behind] = seqA > seqB ? [a!, b!] : [b!, a!];
  masterPort = behind.master.port;
  replicaPort = ahead.replicas[0]!.port;
  expect(await seq(replicaPort, 'gtid_slave_pos')).toBeGreaterThan(await seq(masterPort, 'gtid_binlog_pos'));
  etcdPut(
    `shards/${shard}`,
    JSON.stringify({
      master: { host: H, port: masterPort },
      replicas: [{ host: H, port: replicaPort, weight: 1 }],
      database: 'shardgate',
    }),
  );
  await createTenant(tenant, shard);
}, 30_000);

afterAll(() => {
  removeTenant(tenant);
  etcdDel(`shards/${shard}`);
});

describe('a replica that does not replicate from its shard master', () => {
  it('is excluded by every instance, with the reason, and reads go to the master', async () => {
    await waitFor(
      async () => (await Promise.all(INSTANCES.map(replicaStatus))).every((r) => r?.state === 'excluded'),
      { timeoutMs: 10_000, intervalMs: 100, what: `the replica of ${shard} excluded on every instance` },
    );
    for (const base of INSTANCES) {
      const status = await replicaStatus(base);
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
    // still excluded: the replica's lag reads 0 all along, so it would otherwise be back
    for (const base of INSTANCES) expect((await replicaStatus(base))?.state).toBe('excluded');
  });
});
