/**
 * A compacted watch re-reads the prefix and re-watches (issue "Foundation" item 3), against the
 * real etcd. A config store reaches etcd through a TCP relay that the test cuts: while the store
 * is cut off, keys change and etcd is compacted past the revision the store would resume from;
 * when the relay lets it through again, etcd cancels the resumed watch (compacted) and the store
 * must re-read everything and end up with the latest values.
 */
import { randomBytes } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { recordingLogger } from '../src/testing/recording-logger.js';
import { topology } from '../stack/topology.js';
import { ETCD_ENDPOINT } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

// random too: an interrupted run may have left keys under an earlier prefix of the same pid
const PREFIX = `/shardgate-compaction-test-${process.pid}-${randomBytes(4).toString('hex')}/`;
const RELAY_PORT = await freePort(topology.host);

/** TCP relay to etcd that can be cut (all connections dropped, new ones refused) and restored */
function relay(): { server: Server; cut(): void; restore(): void } {
  let open = true;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (!open) return client.destroy();
    const upstream = connect(topology.etcd.port, topology.host);
    sockets.add(client).add(upstream);
    client.pipe(upstream).pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  }).listen(RELAY_PORT, topology.host);
  return {
    server,
    cut() {
      open = false;
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    restore() {
      open = true;
    },
  };
}

const direct = createEtcdClient({ endpoints: [ETCD_ENDPOINT] });
const r = relay();
// a bind failure fails the file here, instead of an unhandled `error` event
await new Promise<void>((listening, failed) => r.server.once('listening', listening).once('error', failed));
const viaRelay = createEtcdClient({ endpoints: [`http://${topology.host}:${RELAY_PORT}`] });
const log = recordingLogger();
const store = new EtcdConfigStore({
  client: viaRelay,
  prefix: PREFIX,
  logger: log.logger,
  retryMaxMs: 500,
});

afterAll(async () => {
  await store.close();
  viaRelay.close();
  await direct.delete().prefix(PREFIX).exec();
  direct.close();
  r.server.close();
});

describe('config store after a compaction', () => {
  it('re-reads the prefix and re-watches when its resume revision was compacted', async () => {
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('10').exec();
    await store.start();
    expect(store.current().cache.ttlSeconds).toBe(10);
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('11').exec();
    await waitFor(() => store.current().cache.ttlSeconds === 11, { what: 'watch working' });

    r.cut();
    await waitFor(() => !store.status().connected, {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: 'store notices the cut',
    });
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('12').exec();
    const last = await direct.put(`${PREFIX}cache/ttl_seconds`).value('13').exec();
    await direct.put(`${PREFIX}replication/max_lag_seconds`).value('9').exec();
    await direct.kv.compact({ revision: last.header.revision, physical: true });
    r.restore();

    await waitFor(
      () => store.current().cache.ttlSeconds === 13 && store.current().replication.maxLagSeconds === 9,
      { timeoutMs: 15_000, intervalMs: 100, what: 'the store to catch up after the compaction' },
    );
    // the log says what happened, though etcd 3.4 gives no reason (before: "Watcher canceled: ")
    const cancelled = log.lines.find((l) => l.msg === 'etcd watch cancelled; re-reading the prefix');
    expect(cancelled?.obj).toMatchObject({ err: expect.stringMatching(/compacted/) });
    expect((cancelled?.obj as { lastSeenRevision: number }).lastSeenRevision).toBeLessThan(
      Number(last.header.revision),
    );
    // and it keeps watching afterwards
    await direct.put(`${PREFIX}cache/ttl_seconds`).value('14').exec();
    await waitFor(() => store.current().cache.ttlSeconds === 14, {
      timeoutMs: 5000,
      what: 'watch after resync',
    });
  });
});
