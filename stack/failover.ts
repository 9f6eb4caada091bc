/**
 * The shards of the local stack whose master in etcd is not the topology's: a master failover
 * (docs/operations.md, "When a master dies": the replica promoted, `shards set-master`). `up`
 * then leaves that shard's servers as the failover left them: the old master stays stopped (it
 * would come back writable beside the new one), no replication is configured (the topology's
 * CHANGE MASTER would make the new master a replica of the old one), and a promoted server that
 * is down is started as a master (durable flushes, not a replica's). `status` counts a stopped
 * old master as healthy, with the reason. Undoing the failover is the operator's: point the
 * shard back (`shards set-master`) once the old master holds everything again.
 *
 * Failure mode: etcd not answering, or a shard key absent or not JSON: no shard counts as failed
 * over (the topology applies, as on a fresh stack).
 */
import { etcdHealthy } from './etcd.js';
import { etcdctl } from './etcdctl.js';
import { type MariaDbNode, topology } from './topology.js';

export interface FailedOverShard {
  shardId: string;
  /** the topology's master, which etcd no longer names */
  retired: MariaDbNode;
  /** the server of the shard etcd names now, when it is one of the topology's replicas */
  promoted: MariaDbNode | undefined;
  /** `host:port` etcd names as master */
  master: string;
}

/** by shard id; empty when etcd does not answer */
export async function failedOverShards(): Promise<Map<string, FailedOverShard>> {
  const found = new Map<string, FailedOverShard>();
  if (!(await etcdHealthy())) return found;
  for (const shard of topology.shards) {
    let master: { host?: unknown; port?: unknown } | undefined;
    try {
      const raw = await etcdctl(['get', '--print-value-only', `${topology.etcd.prefix}shards/${shard.id}`], {
        timeoutMs: 5000,
      });
      master = (JSON.parse(raw) as { master?: { host?: unknown; port?: unknown } }).master;
    } catch {
      continue;
    }
    if (typeof master?.port !== 'number' || master.port === shard.master.port) continue;
    found.set(shard.id, {
      shardId: shard.id,
      retired: shard.master,
      promoted: shard.replicas.find((r) => r.port === master.port),
      master: `${String(master.host)}:${master.port}`,
    });
  }
  return found;
}

/** a line for `up` and `status` */
export function failoverNote(f: FailedOverShard): string {
  return `shard ${f.shardId} failed over: etcd names ${f.master} as its master; ${f.retired.name} (:${f.retired.port}) stays stopped and replication is left as it is`;
}
