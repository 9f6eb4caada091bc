/**
 * The one description of the shardgate topology (CONTRACT.md §2). The local stack runner
 * (stack/), the HAProxy config template, `shardgate-ctl init` defaults and the docker/compose.yml
 * consistency test all read it; no port or process name is written anywhere else, except the
 * defaults of src/env.ts (src/ may not import stack/), which stack/stack-env.test.ts keeps equal.
 */
export interface MariaDbNode {
  /** process name in `stack status` / `stack logs <name>` and the compose service name */
  name: string;
  port: number;
  serverId: number;
}

export interface ShardTopology {
  id: string;
  master: MariaDbNode;
  replicas: MariaDbNode[];
}

export interface ApiInstance {
  id: string;
  port: number;
  /**
   * initial HAProxy weight, seeded into etcd `lb/weights/<id>` by `shardgate-ctl init`. 10, not
   * 1: an instance's agent-check lowers its weight by a percentage while it lags or its breakers
   * are open (agent-reply.ts), and a weight of 1 has no room below it but 0 (an outside check:
   * six 0.3 s freezes left a lagging instance at weight 1 and its full share).
   */
  weight: number;
  /** TCP port of the instance's HAProxy agent-check responder (SHARDGATE_AGENT_PORT) */
  agentPort: number;
}

export const topology = {
  host: '127.0.0.1',
  stateDir: '.stack',
  database: 'shardgate',
  dbUser: 'shardgate',
  defaultDbPassword: 'shardgate',
  etcd: { name: 'etcd', port: 2379, peerPort: 2380, prefix: '/shardgate/' },
  redis: { name: 'redis', port: 6380 },
  rabbitmq: { name: 'rabbitmq', port: 5673, distPort: 25673, node: 'shardgate@localhost' },
  smtp: { name: 'smtp-sink', port: 2525, mailDir: 'mail' },
  haproxy: {
    name: 'haproxy',
    port: 8080,
    statsPort: 8404,
    socket: 'haproxy.sock',
    backend: 'api',
  },
  shards: [
    {
      id: 'shard-1',
      master: { name: 'shard-1-master', port: 3316, serverId: 11 },
      replicas: [{ name: 'shard-1-replica', port: 3317, serverId: 12 }],
    },
    {
      id: 'shard-2',
      master: { name: 'shard-2-master', port: 3326, serverId: 21 },
      replicas: [{ name: 'shard-2-replica', port: 3327, serverId: 22 }],
    },
  ] satisfies ShardTopology[],
  apis: [
    { id: 'api-1', port: 8101, weight: 10, agentPort: 8201 },
    { id: 'api-2', port: 8102, weight: 10, agentPort: 8202 },
  ] satisfies ApiInstance[],
  /** the email worker serves its Prometheus metrics on `metricsPort` */
  worker: { name: 'email-worker', metricsPort: 9464 },
  lbSync: { name: 'lb-sync' },
} as const;

export type Topology = typeof topology;
