/**
 * A shard master's history going back, as the router finds it (its timeline: master-timeline.ts):
 * not from a probe answer that arrives late, and for a new master that lacks writes this instance
 * committed on the old one after its last probe sample (from reviews of the first version).
 */
import { afterEach, expect, it } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { silentLogger } from '../observability/logger.js';
import { ShardRouter } from './shard-router.js';
import { type NodeSession, type NodeSet, type NodeSpec, nodeSpecKey, type SqlNode } from './sql-node.js';

/** positions by port; a master probe's answer can be held back after the position was read */
const positions = new Map<number, string>();
let gate: Promise<void> | undefined;

class Nodes implements NodeSet<NodeSession> {
  readonly made = new Map<number, SqlNode<NodeSession>>();
  acquire(spec: NodeSpec): SqlNode<NodeSession> {
    const node = {
      key: nodeSpecKey(spec),
      run: async (fn: (s: NodeSession) => Promise<unknown>) =>
        fn({
          flavour: 'mariadb',
          position: async () => {
            const p = positions.get(spec.port) ?? '';
            if (spec.port < 2000 && gate) await gate;
            return p;
          },
          binlogState: async () => positions.get(spec.port) ?? '',
          replicationStopped: async () => undefined,
          probeWrite: async () => {},
          waitFor: async () => false,
        } as unknown as NodeSession),
    } as unknown as SqlNode<NodeSession>;
    this.made.set(spec.port, node);
    return node;
  }
  release() {}
  async close() {}
}

const shard = (master: number, weight = 1) =>
  JSON.stringify({ master: { host: 'db', port: master }, replicas: [{ host: 'db', port: 2001, weight }] });

let router: ShardRouter<NodeSession> | undefined;
afterEach(() => {
  router?.close();
  gate = undefined;
  positions.clear();
});

function setup() {
  const config = new MemoryConfigStore({ initial: { 'shards/s1': shard(1000) } });
  const resets: string[] = [];
  let now = 1_000_000;
  const nodes = new Nodes();
  router = new ShardRouter({
    config,
    nodes,
    logger: silentLogger,
    autoProbe: false,
    now: () => now,
    onHistoryReset: (id) => resets.push(id),
  });
  return {
    config,
    nodes,
    resets,
    router,
    round: () => {
      now += 1000;
      return router!.probeOnce();
    },
  };
}

it('takes no late answer of a replaced entry for a history gone back (a shard map change during a slow probe)', async () => {
  const { config, resets, round } = setup();
  positions.set(1000, '0-1-10');
  positions.set(2001, '0-1-10');
  await round();
  positions.set(1000, '0-1-11');
  let release!: () => void;
  gate = new Promise((r) => {
    release = r;
  });
  const slow = round(); // reads 0-1-11, its answer held back
  await new Promise((r) => setTimeout(r, 10));
  gate = undefined;
  config.put('shards/s1', shard(1000, 2)); // a weight change: the entry rebuilt, its timeline kept
  positions.set(1000, '0-1-12');
  await round(); // the new entry records 0-1-12
  release(); // then the old answer, 0-1-11
  await slow;
  await round();
  expect(resets).toEqual([]);
});

it('takes a new master lacking writes committed on the old one after its last sample for a history gone back', async () => {
  const { config, nodes, resets, router: r, round } = setup();
  positions.set(1000, '0-11-100');
  positions.set(2001, '0-11-100');
  positions.set(1001, '0-11-100');
  await round();
  // three writes committed after the last sample, then the master dies before its replica got them
  for (const seq of [101, 102, 103]) r.noteCommitted('s1', nodes.made.get(1000)!, 'mariadb', `0-11-${seq}`);
  config.put('shards/s1', shard(1001));
  await round();
  expect(resets).toEqual(['s1']);
});

it('takes a new master that has every write committed on the old one for the same history', async () => {
  const { config, nodes, resets, router: r, round } = setup();
  positions.set(1000, '0-11-100');
  positions.set(2001, '0-11-100');
  await round();
  r.noteCommitted('s1', nodes.made.get(1000)!, 'mariadb', '0-11-101');
  // a commit noted for a node no longer the master is ignored
  r.noteCommitted('s1', nodes.made.get(2001)!, 'mariadb', '0-11-900');
  positions.set(1001, '0-12-102');
  config.put('shards/s1', shard(1001));
  await round();
  expect(resets).toEqual([]);
});

it('counts a commit noted through the node of an entry rebuilt since (another wrapper of the same master)', async () => {
  const { config, nodes, resets, router: r, round } = setup();
  positions.set(1000, '0-11-100');
  positions.set(2001, '0-11-100');
  positions.set(1001, '0-11-100');
  await round();
  const before = nodes.made.get(1000)!;
  config.put('shards/s1', shard(1000, 2)); // a weight change: the master's node is wrapped anew
  expect(nodes.made.get(1000)).not.toBe(before);
  r.noteCommitted('s1', before, 'mariadb', '0-11-101');
  config.put('shards/s1', shard(1001));
  await round();
  expect(resets).toEqual(['s1']);
});

it('compares a master change after a history gone back with the new history only', async () => {
  const { config, nodes, resets, router: r, round } = setup();
  positions.set(1000, '0-11-100');
  positions.set(2001, '0-11-100');
  await round();
  r.noteCommitted('s1', nodes.made.get(1000)!, 'mariadb', '0-11-101');
  positions.set(1000, '0-11-3'); // RESET MASTER
  await round();
  expect(resets).toEqual(['s1']);
  // a clean switch to a server holding the whole new history
  positions.set(1001, '0-11-3');
  config.put('shards/s1', shard(1001));
  await round();
  expect(resets).toEqual(['s1']);
});
