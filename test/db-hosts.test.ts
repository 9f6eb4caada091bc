/**
 * SHARDGATE_DB_HOSTS against the running stack (its processes get `127.0.0.1`): a shard put in
 * etcd that names a server elsewhere — here a "rogue" listener on 127.0.0.2 that records every
 * connection — is rejected by every instance with a reason naming it, the last good value stays in
 * force, and no instance or worker ever connects there (so no password is sent). Before the list,
 * the instances' replica probes connected to any server a shard named within a second.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { api, INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdGet, etcdOverride } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const shard = topology.shards[1]!;
const key = `shards/${shard.id}`;
let rogue: Server;
let rogueAddress = '';
const connections: string[] = [];
const sockets = new Set<Socket>();
const restores: (() => void)[] = [];

async function health(
  base: string,
): Promise<{ revision: number; rejected: { key: string; reason: string }[] }> {
  return (await (await fetch(`${base}/health/config`)).json()) as {
    revision: number;
    rejected: { key: string; reason: string }[];
  };
}

beforeAll(async () => {
  rogue = createServer((socket) => {
    connections.push(`${socket.remoteAddress}:${socket.remotePort}`);
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => rogue.listen(0, '127.0.0.2', resolve));
  const address = rogue.address();
  rogueAddress = typeof address === 'object' && address ? `127.0.0.2:${address.port}` : '';
});

afterAll(async () => {
  for (const restore of restores.reverse()) restore();
  for (const s of sockets) s.destroy();
  await new Promise((r) => rogue.close(r));
});

describe('SHARDGATE_DB_HOSTS', () => {
  it('rejects a shard naming a server outside the list, keeps the last good one and never connects there', async () => {
    const good = JSON.parse(etcdGet(key)!) as { replicas: { host: string; port: number; weight: number }[] };
    const [host, port] = rogueAddress.split(':') as [string, string];
    const bad = { ...good, replicas: [...good.replicas, { host, port: Number(port), weight: 0 }] };
    const undo = etcdOverride(key, JSON.stringify(bad));
    restores.push(undo);
    const reason = `replica ${rogueAddress} not in SHARDGATE_DB_HOSTS (127.0.0.1); keeping last good value`;
    for (const base of INSTANCES) {
      await waitFor(
        async () => (await health(base)).rejected.some((r) => r.key === key && r.reason === reason),
        {
          timeoutMs: 5000,
          what: `${base} rejecting ${key}`,
        },
      );
    }
    // the replicas are probed every second: give them three rounds to try
    await new Promise((r) => setTimeout(r, 3000));
    expect(connections).toEqual([]);
    // the shard still serves with its last good value
    const tenant = `dbh-${Date.now().toString(36)}`;
    expect(ctl(['tenants', 'create', tenant, '--shard', shard.id]).code).toBe(0);
    try {
      await waitFor(async () => (await api('GET', '/v1/books?limit=1', { tenant })).status === 200, {
        timeoutMs: 5000,
        what: 'the tenant served',
      });
    } finally {
      ctl(['tenants', 'remove', tenant, '--yes']);
    }
    undo();
    restores.pop();
  });

  it('shardgate-ctl with the same list refuses to write such a shard, naming the server', () => {
    const refused = ctl(['shards', 'add-replica', shard.id, rogueAddress, '--force'], {
      SHARDGATE_DB_HOSTS: '127.0.0.1',
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`replica ${rogueAddress} not in SHARDGATE_DB_HOSTS (127.0.0.1)`);
    expect(JSON.stringify(JSON.parse(etcdGet(key)!))).not.toContain('127.0.0.2');
  });
});
