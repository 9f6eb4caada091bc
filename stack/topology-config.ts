/**
 * The etcd keys the topology (topology.ts) seeds: each shard with its master and replicas, the
 * `least-tenants` placement over every shard, and the initial LB weight of each API instance.
 * `shardgate-ctl init` writes them addressed by `topology.host`, compose's seed
 * (docker-config.ts) by container hostname: `hostOf` is the only difference.
 */
import { type MariaDbNode, topology } from './topology.js';

/**
 * The keys, relative to the config prefix, with their etcd values: `shards/<id>` (in the
 * topology's order), `placement`, `lb/weights/<id>`, in that order.
 */
export function topologyEntries({ hostOf }: { hostOf: (node: MariaDbNode) => string }): Map<string, string> {
  const entries = new Map<string, string>();
  for (const shard of topology.shards) {
    entries.set(
      `shards/${shard.id}`,
      JSON.stringify({
        master: { host: hostOf(shard.master), port: shard.master.port },
        replicas: shard.replicas.map((r) => ({ host: hostOf(r), port: r.port, weight: 1 })),
        database: topology.database,
      }),
    );
  }
  entries.set(
    'placement',
    JSON.stringify({ strategy: 'least-tenants', shards: topology.shards.map((s) => s.id) }),
  );
  for (const api of topology.apis) entries.set(`lb/weights/${api.id}`, String(api.weight));
  return entries;
}
