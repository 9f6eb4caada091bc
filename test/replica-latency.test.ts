/**
 * A replica far away (a slow network path) is excluded by its probes' round trip
 * (`replication/max_latency_ms`, shard-router.ts slowProbe) and re-admitted when the path is
 * fast again. The stack's shard-1 master and replica, the replica behind a TCP relay of this
 * test's own that delays every chunk, and a router of the test's own over them (the stack's
 * instances are left alone). Before, a replica 100 ms away each way stayed admitted, and most
 * reads waiting on it for a position ran out of their budget and went to the master 300 ms late
 * (an outside check).
 */
import { createServer, type Server, Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryConfigStore } from '../src/config/memory-config-store.js';
import { MysqlNodeSet } from '../src/db/mysql-node-set.js';
import { silentLogger } from '../src/observability/logger.js';
import { ShardRouter } from '../src/routing/shard-router.js';
import { dbPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';

const shard = topology.shards[0]!;

/** a relay to the replica that holds each chunk `delay.ms` in either direction, in order */
function delayingRelay(delay: { ms: number }): Promise<{ port: number; server: Server }> {
  const server = createServer((client) => {
    const upstream = new Socket();
    upstream.connect(shard.replicas[0]!.port, topology.host);
    const forward = (from: Socket, to: Socket) => {
      let last = 0;
      from.on('data', (chunk) => {
        const at = Math.max(last, Date.now() + delay.ms);
        last = at;
        setTimeout(() => {
          if (!to.destroyed) to.write(chunk);
        }, at - Date.now());
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
  });
  return new Promise((resolve) =>
    server.listen(0, topology.host, () =>
      resolve({ port: (server.address() as { port: number }).port, server }),
    ),
  );
}

let relay: Server | undefined;
let nodes: MysqlNodeSet | undefined;
let router: ShardRouter<never> | undefined;

afterAll(async () => {
  router?.close();
  await nodes?.close();
  relay?.close();
});

describe('a replica behind a slow path', () => {
  it('is excluded at its second probe over max_latency_ms, reads go to the master, and it is re-admitted once the path is fast', async () => {
    const delay = { ms: 0 };
    const r = await delayingRelay(delay);
    relay = r.server;
    const config = new MemoryConfigStore({
      initial: {
        'shards/s1': JSON.stringify({
          master: { host: topology.host, port: shard.master.port },
          replicas: [{ host: topology.host, port: r.port }],
          database: topology.database,
        }),
        'replication/max_lag_seconds': '60',
        'replication/max_latency_ms': '150',
      },
    });
    nodes = new MysqlNodeSet({ user: topology.dbUser, password: dbPassword, logger: silentLogger });
    const shardRouter = new ShardRouter({ config, nodes, logger: silentLogger, autoProbe: false });
    router = shardRouter as ShardRouter<never>;
    const replicaStatus = () => shardRouter.status()[0]!.replicas[0]!;
    const readFrom = async () => (await shardRouter.read('s1', {}, async () => 'x')).readFrom;

    await shardRouter.probeOnce();
    await shardRouter.probeOnce();
    expect(replicaStatus().state).toBe('admitted');
    expect(await readFrom()).toBe('replica');

    // ~120 ms each way: a round trip of ~240 ms, over the limit and far over the master's
    delay.ms = 120;
    await shardRouter.probeOnce();
    expect(replicaStatus().state).toBe('admitted'); // one slow probe is let pass
    await shardRouter.probeOnce();
    expect(replicaStatus()).toMatchObject({
      state: 'excluded',
      lastError: expect.stringMatching(
        /^probe answered in \d+ ms, over replication\/max_latency_ms \(150 ms\)/,
      ),
    });
    expect(await readFrom()).toBe('master');

    delay.ms = 0;
    await shardRouter.probeOnce();
    expect(replicaStatus().state).toBe('excluded'); // one fast probe is not enough
    await shardRouter.probeOnce();
    expect(replicaStatus().state).toBe('admitted');
    expect(await readFrom()).toBe('replica');
  });
});
