/**
 * A config store whose path to etcd goes dark (packets dropped: no reset, no FIN) and heals: a
 * change put right after the heal applies within the contract's 2 s (src/config/etcd-config-store.ts
 * startNudging), against the real etcd through an in-process TCP proxy that freezes: while frozen
 * it forwards nothing on the connections it holds and holds every new one without forwarding,
 * and after the heal the connections it froze stay frozen (as a connection under TCP's
 * retransmission backoff does), new ones are forwarded.
 *
 * Before: the watch's new connection waited on the dead path (an outside check with iptables:
 * 3.1–5.4 s after the heal; 8 s with a plain watch in a 15 s blackhole), and here it never
 * recovered, the frozen connections being held for good.
 */
import { randomBytes } from 'node:crypto';
import { createServer, connect as netConnect, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { silentLogger } from '../src/observability/logger.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const PREFIX = `/shardgate-blackhole-test-${process.pid}-${randomBytes(4).toString('hex')}/`;
const upstream = new URL(ETCD_ENDPOINT);

/** a TCP proxy to etcd that can go dark (see the file's comment) */
function freezableProxy() {
  let frozen = false;
  const pairs: { client: Socket; upstream?: Socket }[] = [];
  const server = createServer((client) => {
    client.on('error', () => {});
    const pair: { client: Socket; upstream?: Socket } = { client };
    pairs.push(pair);
    if (frozen) {
      client.pause(); // held: taken, never answered
      return;
    }
    const up = netConnect(Number(upstream.port), upstream.hostname);
    up.on('error', () => {});
    pair.upstream = up;
    client.pipe(up);
    up.pipe(client);
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  return {
    listen: () =>
      new Promise<number>((resolve) =>
        server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)),
      ),
    freeze() {
      frozen = true;
      for (const { client, upstream: up } of pairs) {
        if (!up) continue;
        client.unpipe(up);
        up.unpipe(client);
        client.pause();
        up.pause();
      }
    },
    heal() {
      frozen = false;
    },
    close() {
      for (const { client, upstream: up } of pairs) {
        client.destroy();
        up?.destroy();
      }
      server.close();
    },
  };
}

const direct = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
const proxy = freezableProxy();
let store: EtcdConfigStore | undefined;
let viaProxy: ReturnType<typeof createEtcdClient> | undefined;

afterAll(async () => {
  await store?.close();
  viaProxy?.close();
  proxy.close();
  await direct.delete().prefix(PREFIX).exec();
  direct.close();
});

describe('config store after a blackholed path to etcd', () => {
  it('applies a change put right after the path heals within 2 s', { timeout: 60_000 }, async () => {
    const port = await proxy.listen();
    viaProxy = createEtcdClient({ endpoints: [`http://127.0.0.1:${port}`] });
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('30').exec();
    store = new EtcdConfigStore({ client: viaProxy, prefix: PREFIX, logger: silentLogger, processEnv: null });
    await store.start();
    expect(store.current().cache.ttlSeconds).toBe(30);
    proxy.freeze();
    // past gRPC's keepalive (6 s + 2 s timeout, etcd-client.ts): the store knows it lost etcd
    await waitFor(() => !store!.status().connected, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'the store to see etcd unreachable',
    });
    await new Promise((r) => setTimeout(r, 2000));
    proxy.heal();
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('45').exec();
    const putAt = Date.now();
    await waitFor(() => store!.current().cache.ttlSeconds === 45, {
      timeoutMs: 10_000,
      intervalMs: 20,
      what: 'the change applied after the heal',
    });
    expect(Date.now() - putAt).toBeLessThan(2000);
  });
});
