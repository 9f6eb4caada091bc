/**
 * `npm run stack -- up` after a master failover (docs/operations.md, "When a master dies"): the
 * shard map in etcd names another master than the topology's, and `up` must leave that shard as
 * the failover left it (stack/failover.ts).
 *
 * Before: `up` started the dead old master again, writable, and ran CHANGE MASTER on the promoted
 * server to make it a replica of the old master (seen in an outside check). Here shard-2's master
 * is SIGKILLed and etcd pointed at its replica (as `shards set-master` does; the replica is not
 * promoted, so nothing is written to it meanwhile), then `up` runs. Afterwards the shard map is
 * restored and `up` brings the old master back as before.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { replicationStatus } from '../stack/mariadb.js';
import { portOpen } from '../stack/probes.js';
import { isAlive } from '../stack/process-manager.js';
import type { StatusRow } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import { etcdOverride } from './helpers/etcd.js';
import { stackCli, stackPid } from './helpers/stack.js';
import { waitFor } from './helpers/wait-for.js';

const shard = topology.shards.find((s) => s.id === 'shard-2')!;
const [replica] = shard.replicas as [(typeof shard.replicas)[number]];
let restore: (() => void) | undefined;

afterAll(() => {
  // whatever failed: the shard map as it was, and every process back
  restore?.();
  stackCli(['up']);
});

function statusRows(): StatusRow[] {
  let out: string;
  try {
    out = stackCli(['status', '--json']);
  } catch (error) {
    out = String((error as { stdout?: string }).stdout ?? '');
  }
  return JSON.parse(out) as StatusRow[];
}

describe('stack up after a master failover', () => {
  it('leaves the old master stopped and the promoted server alone, and says so; status counts it healthy', async () => {
    const pid = stackPid(shard.master.name)!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), { timeoutMs: 5000, what: 'old master gone' });
    restore = etcdOverride(
      `shards/${shard.id}`,
      JSON.stringify({
        master: { host: topology.host, port: replica.port },
        replicas: [],
        database: topology.database,
      }),
    );
    const out = stackCli(['up']);
    expect(out).toContain(
      `shard ${shard.id} failed over: etcd names ${topology.host}:${replica.port} as its master; ${shard.master.name} (:${shard.master.port}) stays stopped and replication is left as it is`,
    );
    expect(await portOpen(shard.master.port)).toBe(false);
    // its replication still names the old master: no CHANGE MASTER ran
    expect((await replicationStatus(replica))?.masterPort).toBe(shard.master.port);
    const rows = statusRows();
    const old = rows.find((r) => r.name === shard.master.name)!;
    expect([old.state, old.healthy, old.detail]).toEqual([
      'retired',
      true,
      expect.stringMatching(/^retired: shard shard-2 failed over/),
    ]);
    expect(rows.find((r) => r.name === replica.name)?.detail).toBe(
      `master of shard ${shard.id} since a failover`,
    );
    expect(rows.every((r) => r.healthy)).toBe(true);

    // pointed back: the next up starts the old master again, and the replica follows it
    restore();
    restore = undefined;
    stackCli(['up']);
    expect(await portOpen(shard.master.port)).toBe(true);
    await waitFor(async () => (await replicationStatus(replica))?.io === 'Yes', {
      timeoutMs: 15_000,
      what: 'the replica following the old master again',
    });
  });
});
