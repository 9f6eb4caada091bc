/**
 * Every process of the local stack as `status`, `up` and `down` see it, in start order: its name
 * (stack/topology.ts), the ports it listens on (the first is the one `status` shows), the probe
 * that says it serves, and whether it may be absent because a later issue has not built it yet.
 */
import { lbSyncBuilt, workerBuilt } from './app-processes.js';
import { etcdHealthy } from './etcd.js';
import { amqpHandshake, httpStatus, mysqlLogin, redisPing, smtpGreeting } from './probes.js';
import { processes } from './process-manager.js';
import { topology } from './topology.js';
import { workerUrl } from './urls.js';

const H = topology.host;

export type Tier = 'data' | 'app' | 'edge';

export interface ProcessSpec {
  name: string;
  /** listening ports; checked for foreign users before a start; [0] is shown by `status` */
  ports: number[];
  /** `down` stops the edge first, then the apps, then the data tier */
  tier: Tier;
  /** true when the process serves (a protocol-level probe, not just a TCP connect) */
  probe: () => Promise<boolean>;
  /** false while its entry is not built (a later issue): then it is skipped, not missing */
  built: () => boolean;
}

const always = () => true;
const ready = (port: number) => async () => (await httpStatus(`http://${H}:${port}/health/ready`)) === 200;

export function processSpecs(): ProcessSpec[] {
  const { etcd, redis, rabbitmq, smtp, haproxy, worker, lbSync } = topology;
  return [
    { name: etcd.name, ports: [etcd.port, etcd.peerPort], tier: 'data', probe: etcdHealthy, built: always },
    {
      name: redis.name,
      ports: [redis.port],
      tier: 'data',
      probe: () => redisPing(redis.port),
      built: always,
    },
    {
      name: rabbitmq.name,
      ports: [rabbitmq.port, rabbitmq.distPort],
      tier: 'data',
      probe: () => amqpHandshake(rabbitmq.port),
      built: always,
    },
    {
      name: smtp.name,
      ports: [smtp.port],
      tier: 'data',
      probe: () => smtpGreeting(smtp.port),
      built: always,
    },
    ...topology.shards
      .flatMap((s) => [s.master, ...s.replicas])
      .map(
        (n): ProcessSpec => ({
          name: n.name,
          ports: [n.port],
          tier: 'data',
          probe: () => mysqlLogin(n.port),
          built: always,
        }),
      ),
    ...topology.apis.map(
      (a): ProcessSpec => ({
        name: a.id,
        ports: [a.port, a.agentPort],
        tier: 'app',
        probe: ready(a.port),
        built: always,
      }),
    ),
    {
      name: worker.name,
      ports: [worker.metricsPort],
      tier: 'app',
      probe: async () => (await httpStatus(`${workerUrl}/metrics`)) === 200,
      built: workerBuilt,
    },
    {
      name: haproxy.name,
      ports: [haproxy.port, haproxy.statsPort],
      tier: 'edge',
      probe: ready(haproxy.port),
      built: always,
    },
    {
      name: lbSync.name,
      ports: [],
      tier: 'edge',
      probe: async () => processes.state(lbSync.name) === 'running',
      built: lbSyncBuilt,
    },
  ];
}
