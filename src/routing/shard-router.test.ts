import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { type Logger, silentLogger } from '../observability/logger.js';
import { createNoopMetrics } from '../observability/metrics.js';
import { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { DependencyError } from '../resilience/errors.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { breakerNodeGuard } from './breaker-node-guard.js';
import { ShardRouter, type ShardRouterOptions } from './shard-router.js';
import {
  type NodeGuard,
  type NodeSession,
  type NodeSet,
  type NodeSpec,
  nodeSpecKey,
  type SqlNode,
} from './sql-node.js';

/** A database node in memory: its GTID position and whether it answers. */
class FakeServer {
  position = '0-1-1';
  down = false;
  /** this process's pool to it is full (every connection in use, the queue full): `busy` */
  busy = false;
  /** this process is out of file descriptors: a new connection to it fails with EMFILE */
  emfile = false;
  /** what waitFor does: reach the position within the wait, or not */
  catchesUpOnWait = false;
  /** the wait never answers (a replica SIGSTOPped mid-read) */
  hangsOnWait = false;
  waits = 0;
  calls = 0;
  /** how long a position read takes (real time) */
  positionDelayMs = 0;
  /** a MariaDB master's @@gtid_binlog_state; its position when not set */
  binlogState: string | undefined;
  /** what replicationStopped answers (a replica whose thread stopped on an error) */
  stopped: string | undefined;
  /** replicationStopped throws (the node stops answering after its position read) */
  stoppedThrows = false;
  /** a query on a connection (a position probe, a test's `hung` read) waits for this: a SIGSTOPped server */
  hang: Promise<void> | undefined;
  /** a call waits for this before it has a connection: this process's pool busy with its own calls */
  poolWait: Promise<void> | undefined;
}

interface FakeSession extends NodeSession {
  server: FakeServer;
}

class FakeNodeSet implements NodeSet<FakeSession> {
  readonly servers = new Map<number, FakeServer>();
  readonly refs = new Map<string, number>();

  server(port: number): FakeServer {
    const s = this.servers.get(port) ?? new FakeServer();
    this.servers.set(port, s);
    return s;
  }

  acquire(spec: NodeSpec): SqlNode<FakeSession> {
    const key = nodeSpecKey(spec);
    this.refs.set(key, (this.refs.get(key) ?? 0) + 1);
    const server = this.server(spec.port);
    return {
      key,
      run: async (fn) => {
        server.calls++;
        if (server.poolWait) await server.poolWait;
        if (server.down) throw new DependencyUnavailableError(key, 'ECONNREFUSED');
        if (server.busy) throw new DependencyUnavailableError(key, 'queue full', { busy: true });
        if (server.emfile)
          throw new DependencyUnavailableError(key, 'EMFILE', {
            cause: Object.assign(new Error('connect EMFILE 127.0.0.1:1001'), {
              code: 'EMFILE',
              errno: -24,
              fatal: true,
            }),
          });
        return fn({
          server,
          flavour: 'mariadb',
          position: async () => {
            if (server.hang) await server.hang;
            if (server.positionDelayMs > 0) await new Promise((r) => setTimeout(r, server.positionDelayMs));
            return server.position;
          },
          binlogState: async () => server.binlogState ?? server.position,
          replicationStopped: async () => {
            if (server.stoppedThrows) throw new DependencyUnavailableError(key, 'connection lost');
            return server.stopped;
          },
          probeWrite: async () => {},
          waitFor: async (gtid) => {
            server.waits++;
            if (server.hangsOnWait) await new Promise(() => {});
            if (server.catchesUpOnWait) server.position = gtid;
            return server.catchesUpOnWait;
          },
        });
      },
    };
  }

  release(spec: NodeSpec): void {
    const key = nodeSpecKey(spec);
    this.refs.set(key, (this.refs.get(key) ?? 0) - 1);
  }

  async close(): Promise<void> {}
}

const shardJson = (replicas: { port: number; weight?: number }[]) =>
  JSON.stringify({
    master: { host: 'db', port: 1000 },
    replicas: replicas.map((r) => ({ host: 'db', port: r.port, weight: r.weight ?? 1 })),
  });

/** ryw_timeout_ms (200 in setup()) plus the router's margin of 100 ms for a replica's answer */
const RYW_BUDGET_MS = 200 + 100;

afterEach(() => {
  vi.useRealTimers();
});

/**
 * With fake timers installed: `read` (started after them) has settled once `ms` of timer time
 * passed. Without a bound on the hung replica it would never settle, whatever the box's speed.
 */
async function settledAfter<T>(read: Promise<T>, ms: number): Promise<T> {
  let settled = false;
  read.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await vi.advanceTimersByTimeAsync(ms);
  expect(settled, `settled after ${ms} ms of timer time`).toBe(true);
  return read;
}

function setup(
  replicas: { port: number; weight?: number }[] = [{ port: 1001 }],
  {
    random = Math.random,
    initial = {},
    guardOf,
    logger = silentLogger,
    onHistoryReset,
    onRead,
  }: {
    logger?: Logger;
    onHistoryReset?: (shardId: string) => void;
    onRead?: ShardRouterOptions<FakeSession>['onRead'];
    random?: () => number;
    /** more etcd keys */
    initial?: Record<string, string>;
    guardOf?: (config: MemoryConfigStore) => NodeGuard;
  } = {},
) {
  let now = 1_000_000;
  const config = new MemoryConfigStore({
    initial: {
      'shards/s1': shardJson(replicas),
      'replication/max_lag_seconds': '4',
      'replication/ryw_timeout_ms': '200',
      ...initial,
    },
  });
  const nodes = new FakeNodeSet();
  const router = new ShardRouter({
    config,
    nodes,
    logger,
    autoProbe: false,
    now: () => now,
    random,
    guard: guardOf?.(config),
    onHistoryReset,
    onRead,
  });
  const where = () => router.read('s1', {}, async (s) => s.server).then((r) => r.readFrom);
  return {
    config,
    nodes,
    router,
    where,
    master: nodes.server(1000),
    replica: nodes.server(1001),
    tick: async (ms = 1000) => {
      now += ms;
      await router.probeOnce();
    },
  };
}

describe('shard router: replica selection', () => {
  it('reads from the master until a first probe admitted a replica', async () => {
    const { where, tick } = setup();
    expect(await where()).toBe('master');
    await tick();
    expect(await where()).toBe('replica');
  });

  it('excludes a replica whose SQL thread stopped once the lag passes the max, and re-admits it after catch-up with hysteresis', async () => {
    const { where, tick, master, replica } = setup();
    await tick();
    // the replica stops applying; the master moves on
    master.position = '0-1-2';
    await tick();
    expect(await where()).toBe('replica');
    await tick(3000); // 3 s behind < 4
    expect(await where()).toBe('replica');
    await tick(1500); // 4.5 s > 4
    expect(await where()).toBe('master');
    replica.position = '0-1-2'; // caught up
    await tick();
    expect(await where()).toBe('master'); // one good probe is not enough
    await tick();
    expect(await where()).toBe('replica');
  });

  it('picks replicas by weight and never one of weight 0', async () => {
    let r = 0;
    const { router, nodes, tick } = setup(
      [
        { port: 1001, weight: 1 },
        { port: 1002, weight: 3 },
        { port: 1003, weight: 0 },
      ],
      {
        random: () => {
          r = (r + 0.13) % 1;
          return r;
        },
      },
    );
    await tick();
    const seen = new Map<FakeServer, number>();
    for (let i = 0; i < 400; i++) {
      const s = (await router.read('s1', {}, async (x) => x.server)).value;
      seen.set(s, (seen.get(s) ?? 0) + 1);
    }
    expect(seen.get(nodes.server(1003))).toBeUndefined();
    const ratio = (seen.get(nodes.server(1002)) ?? 0) / (seen.get(nodes.server(1001)) ?? 1);
    expect(ratio).toBeGreaterThan(2);
    expect(ratio).toBeLessThan(4.5);
  });

  it("reads the master when this instance's pool to the replica is full, and does not exclude it", async () => {
    const { where, tick, replica, router } = setup();
    await tick();
    replica.busy = true;
    expect(await where()).toBe('master');
    replica.busy = false;
    // before: excluded as if unreachable, until its probes re-admitted it
    expect(router.status()[0]!.replicas[0]!.state).not.toBe('excluded');
    expect(await where()).toBe('replica');
  });

  it('reads the master when this process is out of descriptors for the replica (EMFILE), and does not exclude it', async () => {
    const { where, tick, replica, router } = setup();
    await tick();
    replica.emfile = true;
    expect(await where()).toBe('master');
    replica.emfile = false;
    // before: excluded as unreachable, though the replica was fine
    expect(router.status()[0]!.replicas[0]!.state).not.toBe('excluded');
    expect(await where()).toBe('replica');
  });

  it('tells each read served, with what it asked for and where it was read (db_reads_total)', async () => {
    const seen: string[] = [];
    const { where, tick, router, master, replica } = setup([{ port: 1001 }], {
      onRead: (shard, wanted, served) => seen.push(`${shard} ${wanted} ${served}`),
    });
    master.position = '0-1-5';
    replica.position = '0-1-5';
    await tick();
    const read = (request: Parameters<typeof router.read>[1]) =>
      router.read('s1', request, async () => 'x').then((r) => r.readFrom);
    expect(await where()).toBe('replica');
    const position = (gtid: string) => ({ shardId: 's1', flavour: 'mariadb' as const, gtid });
    expect(await read({ position: position('0-1-5') })).toBe('replica');
    // a write the replica has not applied within ryw_timeout_ms: the master serves it
    expect(await read({ position: position('0-1-6') })).toBe('master');
    expect(await read({ from: 'master' })).toBe('master');
    expect(await read({ from: 'master-else-replica' })).toBe('master');
    expect(seen).toEqual([
      's1 replica replica',
      's1 replica_at_position replica',
      's1 replica_at_position master',
      's1 master master',
      's1 master_else_replica master',
    ]);
  });

  it('falls back to the master when the chosen replica is unreachable, and excludes it', async () => {
    const { where, tick, replica } = setup();
    await tick();
    replica.down = true;
    expect(await where()).toBe('master');
    replica.down = false;
    expect(await where()).toBe('master'); // excluded until probes re-admit it
    await tick();
    await tick();
    expect(await where()).toBe('replica');
  });

  it('excludes a replica whose probes answer over max_latency_ms and 3× the master, at the second in a row; re-admits it after two fast ones', async () => {
    const { where, tick, replica, router } = setup([{ port: 1001 }], {
      initial: { 'replication/max_latency_ms': '40' },
    });
    await tick();
    expect(await where()).toBe('replica');
    replica.positionDelayMs = 90;
    await tick();
    expect(await where()).toBe('replica'); // one slow probe is let pass
    await tick();
    expect(await where()).toBe('master');
    expect(router.status()[0]!.replicas[0]).toMatchObject({
      state: 'excluded',
      lastError: expect.stringMatching(
        /^probe answered in \d+ ms, over replication\/max_latency_ms \(40 ms\) and 3× the master's \d+ ms$/,
      ),
    });
    replica.positionDelayMs = 0;
    await tick();
    expect(await where()).toBe('master'); // one fast probe is not enough
    await tick();
    expect(await where()).toBe('replica');
  });

  it("judges a replica's round trip by the time the event loop waited idle for it: a busy loop is no slow replica", async () => {
    let idle = 0;
    const config = new MemoryConfigStore({
      initial: { 'shards/s1': shardJson([{ port: 1001 }]), 'replication/max_latency_ms': '40' },
    });
    const nodes = new FakeNodeSet();
    const router = new ShardRouter({
      config,
      nodes,
      logger: silentLogger,
      autoProbe: false,
      loopIdleMs: () => idle,
    });
    await router.probeOnce();
    // the replica answers 90 ms late, but the loop was busy (idle time does not move): not slow
    nodes.server(1001).positionDelayMs = 90;
    for (let i = 0; i < 3; i++) await router.probeOnce();
    expect(router.status()[0]!.replicas[0]!.state).toBe('admitted');
    // the loop waited idle for it: slow
    const ticking = setInterval(() => (idle += 10), 10);
    try {
      await router.probeOnce();
      await router.probeOnce();
    } finally {
      clearInterval(ticking);
    }
    expect(router.status()[0]!.replicas[0]!.state).toBe('excluded');
    router.close();
  });

  it('moves no streak in a round whose master gave no answer: a far replica is not re-admitted through a master outage', async () => {
    const { where, tick, replica, master } = setup([{ port: 1001 }], {
      initial: { 'replication/max_latency_ms': '40' },
    });
    await tick();
    replica.positionDelayMs = 90;
    await tick();
    await tick();
    expect(await where()).toBe('master');
    master.down = true;
    await tick();
    await tick();
    master.down = false;
    await tick();
    expect(await where()).toBe('master');
  });

  it('keeps reading from a replica that lacks only what a crashed master never sent; one that lagged before stays excluded', async () => {
    const { router, nodes, where, tick, master, replica } = setup([
      { port: 1001, weight: 1 },
      { port: 1002, weight: 1 },
    ]);
    const stalled = nodes.server(1002);
    master.position = '0-1-10';
    replica.position = '0-1-10';
    stalled.position = '0-1-2'; // its SQL thread stopped long ago
    for (let i = 0; i < 7; i++) await tick();
    const states = () => router.status()[0]!.replicas.map((r) => r.state);
    expect(states()).toEqual(['admitted', 'excluded']);
    // the master's last transaction is in its last sample, cut from its binlog by the crash: no
    // replica will receive it
    master.position = '0-1-11';
    await tick();
    master.down = true;
    for (let i = 0; i < 10; i++) await tick();
    expect(states()).toEqual(['admitted', 'excluded']);
    expect(await where()).toBe('replica');
    // back: lag is judged on the clock again, and the replica gets the write
    master.down = false;
    replica.position = '0-1-11';
    await tick();
    await tick();
    expect(states()).toEqual(['admitted', 'excluded']);
  });

  it('forgives only a newest sample recorded just before the master stopped answering, not one it held for long', async () => {
    const { router, tick, master, replica } = setup();
    master.position = '0-1-10';
    replica.position = '0-1-10';
    await tick();
    await tick();
    // the replica's SQL thread stops just before the master's write; the master then idles a minute
    master.position = '0-1-11';
    for (let i = 0; i < 60; i++) await tick();
    expect(router.status()[0]!.replicas[0]!.state).toBe('excluded');
    master.down = true;
    for (let i = 0; i < 5; i++) await tick();
    expect(router.status()[0]!.replicas[0]!.state).toBe('excluded');
  });

  it('excludes a replica stalled behind earlier samples while the master does not answer (dead, or unreachable from here only)', async () => {
    const { router, where, tick, master, replica } = setup();
    master.position = '0-1-10';
    replica.position = '0-1-10';
    await tick();
    await tick();
    expect(await where()).toBe('replica');
    // the replica's SQL thread stalls; the master takes two more writes, then stops answering
    master.position = '0-1-11';
    await tick();
    master.position = '0-1-12';
    await tick();
    master.down = true;
    for (let i = 0; i < 6; i++) await tick();
    expect(router.status()[0]!.replicas[0]!.state).toBe('excluded');
  });

  it('keeps a slow replica whose master answers as slowly (a busy instance, far nodes), and with max_latency_ms 0', async () => {
    const slowBoth = setup([{ port: 1001 }], { initial: { 'replication/max_latency_ms': '40' } });
    await slowBoth.tick();
    slowBoth.replica.positionDelayMs = 90;
    slowBoth.master.positionDelayMs = 60;
    for (let i = 0; i < 3; i++) await slowBoth.tick();
    expect(await slowBoth.where()).toBe('replica');
    const off = setup([{ port: 1001 }], { initial: { 'replication/max_latency_ms': '0' } });
    await off.tick();
    off.replica.positionDelayMs = 90;
    for (let i = 0; i < 3; i++) await off.tick();
    expect(await off.where()).toBe('replica');
  });

  it('excludes a replica whose probe fails', async () => {
    const { where, tick, replica } = setup();
    await tick();
    replica.down = true;
    await tick();
    expect(await where()).toBe('master');
  });
});

describe('shard router: a step of the wall clock (NTP, date -s)', () => {
  it('measures lag on the monotonic clock by default: a step back hides no lag, a step ahead makes none', async () => {
    // Date and performance.now faked apart: setSystemTime steps the wall clock only
    vi.useFakeTimers({ toFake: ['Date', 'performance'] });
    const config = new MemoryConfigStore({
      initial: {
        'shards/s1': shardJson([{ port: 1001 }]),
        'replication/max_lag_seconds': '4',
        'replication/ryw_timeout_ms': '200',
      },
    });
    const nodes = new FakeNodeSet();
    const router = new ShardRouter({ config, nodes, logger: silentLogger, autoProbe: false });
    const where = () => router.read('s1', {}, async (s) => s.server).then((r) => r.readFrom);
    const lag = () => router.status()[0]!.replicas[0]!.lagSeconds;
    const tick = async (ms = 1000) => {
      vi.advanceTimersByTime(ms);
      await router.probeOnce();
    };
    const master = nodes.server(1000);
    const replica = nodes.server(1001);
    await tick();
    // a step ahead between a sample and the probe that reads the replica's lag against it
    master.position = '0-1-2';
    await tick();
    vi.setSystemTime(Date.now() + 3 * 3_600_000);
    await tick();
    expect(lag()).toBe(1); // on Date.now: 10801, and excluded
    expect(await where()).toBe('replica');
    replica.position = '0-1-2';
    await tick();
    // the replica's SQL thread stops; the wall clock goes back an hour
    master.position = '0-1-3';
    await tick();
    vi.setSystemTime(Date.now() - 3_600_000);
    await tick(3000);
    expect(lag()).toBe(3); // on Date.now: 0
    await tick(1500);
    expect(lag()).toBe(4.5);
    expect(await where()).toBe('master');
    router.close();
  });
});

describe('shard router: a node that answers without a table (answered)', () => {
  /** a read whose table `lacking` does not have, as mysql-errors.ts toSchemaMissing words it */
  const readLacking =
    (lacking: FakeServer) =>
    async (s: FakeSession): Promise<FakeServer> => {
      if (s.server === lacking)
        throw new DependencyUnavailableError('node', "ER_NO_SUCH_TABLE: Table 'x.books' doesn't exist", {
          answered: true,
        });
      return s.server;
    };

  it('a replica lacking it passes the read to the master and stays admitted', async () => {
    const { router, tick, replica, master, where } = setup();
    await tick();
    const read = await router.read('s1', {}, readLacking(replica));
    expect([read.readFrom, read.value]).toEqual(['master', master]);
    // before: excluded as if unreachable, every read, until probes re-admitted it
    expect(router.status()[0]!.replicas[0]!.state).toBe('admitted');
    expect(await where()).toBe('replica');
  });

  it('says so in the log at most once a minute, with how many reads each line stands for', async () => {
    const warnings: { fields: Record<string, unknown>; msg: string }[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (fields: Record<string, unknown>, msg: string) => warnings.push({ fields, msg }),
      child: () => logger,
    };
    const { router, tick, replica } = setup(undefined, { logger });
    await tick();
    const lacking = () => warnings.filter((w) => w.msg === 'replica lacks the schema; reading from master');
    for (let i = 0; i < 50; i++) await router.read('s1', {}, readLacking(replica));
    // before: one line per read
    expect(lacking()).toHaveLength(1);
    await tick(61_000);
    await router.read('s1', {}, readLacking(replica));
    expect(lacking()).toHaveLength(2);
    expect(lacking()[1]!.fields).toMatchObject({ replica: 'mysql-replica:s1:1', repeatsSinceLast: 49 });
  });

  it('a master lacking it fails a master-else-replica read instead of asking a replica', async () => {
    const { router, tick, master, replica } = setup();
    await tick();
    const calls = replica.calls;
    await expect(router.read('s1', { from: 'master-else-replica' }, readLacking(master))).rejects.toThrow(
      'ER_NO_SUCH_TABLE',
    );
    expect(replica.calls).toBe(calls);
  });
});

describe('shard router: a replica that ends a read at its statement time limit', () => {
  /** a read `slowOn` ends as mysql-errors.ts toStatementTimeout words it */
  const readEndedOn =
    (slowOn: FakeServer) =>
    async (s: FakeSession): Promise<FakeServer> => {
      if (s.server === slowOn)
        throw new DependencyUnavailableError(
          'node',
          'ER_STATEMENT_TIMEOUT (1969): the server ended the statement',
          {
            endedAtTimeLimit: true,
          },
        );
      return s.server;
    };

  it('passes that read to the master and stays admitted for the others, said once a minute', async () => {
    const warnings: string[] = [];
    const logger: Logger = {
      ...silentLogger,
      warn: (_fields: Record<string, unknown>, msg: string) => warnings.push(msg),
      child: () => logger,
    };
    const { router, tick, replica, master, where } = setup(undefined, { logger });
    await tick();
    for (let i = 0; i < 3; i++) {
      const read = await router.read('s1', {}, readEndedOn(replica));
      expect([read.readFrom, read.value]).toEqual(['master', master]);
    }
    // before: excluded as if unreachable, every read going to the master until its next probe
    expect(router.status()[0]!.replicas[0]!.state).toBe('admitted');
    expect(await where()).toBe('replica');
    expect(warnings.filter((w) => w.includes('statement time limit'))).toHaveLength(1);
  });
});

describe('shard router: a replica whose replication stopped on an error', () => {
  const DUPLICATE = "replication stopped: SQL thread error 1062: Duplicate entry 't-1' for key 'PRIMARY'";

  it('is excluded at the next probe with the reason as its lastError, though its lag is 0, and re-admitted after the readmit probes once it runs again', async () => {
    const { where, tick, replica, router } = setup();
    await tick();
    expect(await where()).toBe('replica');
    replica.stopped = DUPLICATE; // an idle shard: its lag stays 0
    await tick();
    expect(await where()).toBe('master');
    const status = () => router.status()[0]!.replicas[0]!;
    expect(status()).toMatchObject({ state: 'excluded', lastError: DUPLICATE, lagSeconds: null });
    await tick();
    expect(status()).toMatchObject({ state: 'excluded', lastError: DUPLICATE });
    replica.stopped = undefined; // repaired: its SQL thread runs again
    await tick();
    expect(await where()).toBe('master'); // one good probe is not enough
    expect(status().lastError).toBeUndefined();
    await tick();
    expect(await where()).toBe('replica');
    expect(status()).toMatchObject({ state: 'admitted', lagSeconds: 0 });
  });

  it('is never admitted when its first probe finds it stopped', async () => {
    const { where, tick, replica, router } = setup();
    replica.stopped = DUPLICATE;
    await tick();
    expect(await where()).toBe('master');
    expect(router.status()[0]!.replicas[0]!).toMatchObject({ state: 'excluded', lastError: DUPLICATE });
  });

  it('fails the probe when the status read fails', async () => {
    const { where, tick, replica, router } = setup();
    await tick();
    replica.stoppedThrows = true;
    await tick();
    expect(await where()).toBe('master');
    expect(router.status()[0]!.replicas[0]!.lastError).toMatch(/connection lost/);
  });

  it('does not ask the master', async () => {
    const { tick, master } = setup();
    let asked = 0;
    Object.defineProperty(master, 'stopped', { get: () => void asked++ });
    await tick();
    expect(asked).toBe(0);
  });
});

describe('shard router: a master whose history went back (RESET MASTER, a restore)', () => {
  it('tells it once, reads from the replica that follows the new history within the readmit probes, and measures its lag from then', async () => {
    const resets: string[] = [];
    const { logger, lines } = recordingLogger();
    const { router, where, tick, master, replica } = setup([{ port: 1001 }], {
      onHistoryReset: (id) => resets.push(id),
      logger,
    });
    master.position = '0-1-8314';
    replica.position = '0-1-8314';
    await tick();
    await tick();
    expect(await where()).toBe('replica');
    // RESET MASTER on both; the master numbers from 1 again, the replica follows
    master.position = '0-1-3';
    replica.position = '0-1-3';
    await tick();
    expect(resets).toEqual(['s1']);
    const told = lines.filter((l) => l.level === 'error');
    expect(told).toHaveLength(1);
    expect(told[0]!.obj).toMatchObject({ shard: 's1', from: '0-1-8314', to: '0-1-3' });
    for (let i = 4; i < 30; i++) {
      master.position = `0-1-${i}`;
      replica.position = `0-1-${i}`;
      await tick();
    }
    expect(resets).toEqual(['s1']);
    expect(await where()).toBe('replica');
    expect(router.status()[0]!.replicas[0]).toMatchObject({ state: 'admitted', lagSeconds: 0 });
  });
});

describe('shard router: a lag the timeline cannot bound (fresh or pruned history)', () => {
  const replicaStatus = (router: ShardRouter<FakeSession>, i = 0) => router.status()[0]!.replicas[i]!;

  it('does not admit a replica far behind at instance start; excludes it once the timeline is older than the max', async () => {
    const { router, where, tick, master, replica } = setup();
    // an instance starts while the replica's SQL thread has been stopped for hours
    master.position = '0-1-900000';
    replica.position = '0-1-5';
    for (let i = 0; i < 4; i++) {
      await tick(); // the timeline is 0..3 s old: the replica's lag is "at least that", unknown
      expect(await where()).toBe('master');
    }
    expect(replicaStatus(router).state).toBe('unknown');
    await tick(2000); // 5 s > max 4: now the lag is known to be over the limit
    expect(await where()).toBe('master');
    expect(replicaStatus(router).state).toBe('excluded');
    expect(replicaStatus(router).lagSeconds).toBeGreaterThan(4);
    replica.position = '0-1-900000'; // caught up: re-admitted with the usual hysteresis
    await tick();
    expect(await where()).toBe('master');
    await tick();
    expect(await where()).toBe('replica');
  });

  it('admits at once at start a replica that has applied everything, and one that lacks only the newest sample', async () => {
    const { where, tick, master, replica } = setup();
    master.position = '0-1-7';
    replica.position = '0-1-7';
    await tick();
    expect(await where()).toBe('replica');
    master.position = '0-1-8'; // the replica lacks only the newest sample
    await tick();
    expect(await where()).toBe('replica');
    await tick(3000);
    expect(await where()).toBe('replica'); // 3 s < 4: exact lag, admitted as before
  });

  it('judges the first probe against the master sample of the same round, however late the master answers', async () => {
    const { where, tick, master } = setup();
    master.positionDelayMs = 30; // the replica answers first, while the timeline is still empty
    await tick();
    expect(await where()).toBe('replica');
  });

  it('keeps an exact lag for a replica trailing a busy master that stalls, across prunes', async () => {
    const { where, tick, master, replica } = setup();
    await tick();
    for (let i = 2; i <= 9; i++) {
      master.position = `0-1-${i}`;
      if (i < 5 || i > 7) replica.position = `0-1-${i - 1}`; // trails by a probe; stalls at 5..7
      await tick();
      expect(await where()).toBe('replica');
    }
  });

  it('does not keep a replica admitted against a new master it is far behind (shards set-master)', async () => {
    const { router, config, nodes, where, tick, replica } = setup();
    await tick();
    expect(await where()).toBe('replica');
    nodes.server(1005).position = '0-2-5000';
    // promoted from a replica of the old master (log_slave_updates): its binlog holds server 1's
    nodes.server(1005).binlogState = '0-1-1,0-2-5000';
    config.put(
      'shards/s1',
      JSON.stringify({
        master: { host: 'db', port: 1005 },
        replicas: [{ host: 'db', port: 1001, weight: 1 }],
      }),
    );
    await tick();
    expect(await where()).toBe('master');
    expect(replicaStatus(router).state).not.toBe('admitted');
    replica.position = '0-2-5000'; // it has what the new master has: admitted at once
    await tick();
    expect(await where()).toBe('replica');
  });

  it('does not admit a stale replica added next to a busy master (the timeline was pruned to its newest sample)', async () => {
    const { router, config, nodes, tick, master, replica } = setup();
    for (let i = 2; i <= 30; i++) {
      master.position = `0-1-${i}`;
      replica.position = `0-1-${i}`;
      await tick();
    }
    nodes.server(1002).position = '0-1-1'; // hours behind
    config.put('shards/s1', shardJson([{ port: 1001 }, { port: 1002 }]));
    for (let i = 31; i <= 35; i++) {
      master.position = `0-1-${i}`;
      replica.position = `0-1-${i}`;
      await tick();
      expect(replicaStatus(router, 1).state).not.toBe('admitted');
      expect(replicaStatus(router, 0).state).toBe('admitted');
    }
    expect(replicaStatus(router, 1).state).toBe('excluded'); // 5 s of history it lacks > 4
    nodes.server(1002).position = '0-1-35';
    await tick();
    await tick();
    expect(replicaStatus(router, 1).state).toBe('admitted');
  });
});

describe('shard router: a replica that does not follow the master', () => {
  const status = (router: ShardRouter<FakeSession>) => router.status()[0]!.replicas[0]!;
  const tokenRead = (router: ShardRouter<FakeSession>, gtid: string) =>
    router
      .read('s1', { position: { shardId: 's1', flavour: 'mariadb', gtid } }, async () => 'x')
      .then((r) => r.readFrom);

  it("is never read from when its position is ahead of the master's (another shard's replica), and stays excluded as both move on", async () => {
    // an outside check: shards add-replica of shard-1's replica to a shard whose master is
    // shard-2's; its sequence numbers in domain 0 were higher, so it looked caught up (lag 0)
    const { router, where, tick, master, replica } = setup();
    master.position = '0-21-107';
    replica.position = '0-11-272';
    await tick();
    expect(await where()).toBe('master');
    expect(await tokenRead(router, '0-21-108')).toBe('master');
    await tick();
    expect(status(router).state).toBe('excluded');
    expect(status(router).lastError).toMatch(/ahead of the master's/);
    for (let i = 0; i < 5; i++) {
      // its own master writes on; this one passes the foreign sequence number
      master.position = `0-21-${300 + i}`;
      replica.position = `0-11-${300 + i}`;
      await tick();
      expect(await where()).toBe('master');
      expect(await tokenRead(router, `0-21-${300 + i}`)).toBe('master');
    }
    expect(status(router).lastError).toMatch(/ahead of the master's/);
  });

  it('is judged again once re-seeded from its master, and read from once a probe finds it following', async () => {
    const { router, where, tick, master, replica } = setup();
    master.position = '0-21-107';
    replica.position = '0-11-272';
    await tick();
    await tick();
    expect(status(router).state).toBe('excluded');
    replica.position = '0-21-107';
    await tick(); // judged by the position read before: still the foreign one
    await tick(); // found the master's; re-admitted with the usual hysteresis
    await tick();
    expect(await where()).toBe('replica');
    expect(status(router).lastError).toBeUndefined();
  });

  it('excludes replicas a new master lacks the writes of (shards set-master to a server they never followed)', async () => {
    const { router, config, nodes, where, tick, master, replica } = setup();
    master.position = replica.position = '0-11-272';
    await tick();
    expect(await where()).toBe('replica');
    nodes.server(1005).position = '0-21-107';
    config.put(
      'shards/s1',
      JSON.stringify({
        master: { host: 'db', port: 1005 },
        replicas: [{ host: 'db', port: 1001, weight: 1 }],
      }),
    );
    for (let i = 0; i < 4; i++) {
      await tick();
      expect(await where()).toBe('master');
    }
    expect(status(router).lastError).toMatch(/ahead of the master's/);
  });

  it("is caught by the master's binlog state when its sequence numbers trail the master's (it would look a second behind)", async () => {
    const { router, where, tick, master, replica } = setup();
    master.position = '0-21-100';
    replica.position = '0-11-90';
    await tick();
    expect(await where()).toBe('master');
    // another master's replica, a few transactions behind this one: it contains the older
    // sample by sequence number, so its lag read about 0 s and it was admitted
    master.position = '0-21-105';
    replica.position = '0-11-102';
    await tick();
    for (let i = 0; i < 4; i++) {
      master.position = `0-21-${110 + i * 5}`;
      replica.position = `0-11-${108 + i * 5}`;
      await tick();
      expect(await where()).toBe('master');
    }
    expect(status(router).state).toBe('excluded');
    expect(status(router).lastError).toMatch(/ahead of the master's/);
  });

  it('is never read from when added next to a running master it trails by sequence number, its first probe included', async () => {
    // a review: its lag read about 0 on its first probe, before any later master position could
    // judge it, and a read was served by it
    const { router, config, nodes, tick, master, replica } = setup();
    // the shard's own replica trails by three transactions: the timeline keeps the samples it
    // has not applied, which the foreign replica's numbers pass
    for (let i = 1; i <= 5; i++) {
      master.position = `0-21-${100 + i}`;
      replica.position = `0-21-${97 + i}`;
      await tick();
    }
    const foreign = nodes.server(1002);
    config.put(
      'shards/s1',
      JSON.stringify({
        master: { host: 'db', port: 1000 },
        replicas: [
          { host: 'db', port: 1001, weight: 1 },
          { host: 'db', port: 1002, weight: 1 },
        ],
      }),
    );
    for (let round = 0; round < 3; round++) {
      master.position = `0-21-${106 + round}`;
      replica.position = `0-21-${103 + round}`;
      foreign.position = `0-11-${104 + round}`;
      await tick();
      for (let i = 0; i < 20; i++) {
        const { value } = await router.read('s1', {}, async (s) => s.server);
        expect(value).not.toBe(foreign);
      }
    }
    expect(router.status()[0]!.replicas[1]!.lastError).toMatch(/ahead of the master's/);
  });

  it('keeps a replica that applied what an earlier master wrote, as the binlog of a promoted one holds it', async () => {
    const { where, tick, master, replica } = setup();
    // the master was promoted from a replica of server 11 (log_slave_updates): its binlog holds
    // 11's transactions and its own; the replica's last applied one is still 11's
    master.position = '0-21-300';
    master.binlogState = '0-11-272,0-21-300';
    replica.position = '0-11-272';
    await tick();
    await tick();
    replica.position = '0-21-300';
    for (let i = 0; i < 3; i++) {
      await tick();
      expect(await where()).toBe('replica');
    }
  });

  it("admits a busy master's own replica that read ahead of the same round's master sample", async () => {
    const { where, tick, master, replica } = setup();
    // the replica's position was read a moment after the master's, which wrote meanwhile
    master.position = '0-1-10';
    replica.position = '0-1-11';
    await tick();
    expect(await where()).toBe('master');
    master.position = '0-1-12';
    replica.position = '0-1-12';
    await tick();
    expect(await where()).toBe('replica');
    for (let i = 13; i < 20; i++) {
      // read ahead of each round's sample again: the master's later position always has it
      master.position = `0-1-${i}`;
      replica.position = `0-1-${i + 1}`;
      await tick();
      expect(await where()).toBe('replica');
    }
  });
});

describe('shard router: read-your-writes', () => {
  const token = (gtid: string) => ({ shardId: 's1', flavour: 'mariadb' as const, gtid });

  it('serves a token from a replica whose probed position already contains it, without waiting', async () => {
    const { router, tick, replica, master } = setup();
    master.position = replica.position = '0-1-7';
    await tick();
    const r = await router.read('s1', { position: token('0-1-7') }, async () => 'x');
    expect(r.readFrom).toBe('replica');
    expect(replica.waits).toBe(0);
  });

  it('reads from the master soon after ryw_timeout_ms when a replica that had applied the token hangs', async () => {
    const { router, tick, replica, master } = setup();
    master.position = replica.position = '0-1-7';
    await tick();
    vi.useFakeTimers();
    // the replica froze after its last probe: the read itself never answers; without a bound it
    // would wait for the hung replica forever (the breaker's timeout upstream). ryw_timeout_ms 200
    const r = await settledAfter(
      router.read('s1', { position: token('0-1-7') }, async (session) =>
        session.server === replica ? new Promise<string>(() => {}) : 'x',
      ),
      RYW_BUDGET_MS,
    );
    expect(r.readFrom).toBe('master');
    expect(r.value).toBe('x');
    expect(replica.waits).toBe(0);
  });

  it('reads from the master soon after ryw_timeout_ms when the replica hangs on a read without a token', async () => {
    const { router, tick, replica } = setup();
    await tick();
    vi.useFakeTimers();
    // the replica froze after its last probe (still admitted): the read never answers there.
    // ryw_timeout_ms is 200 here; without a bound the read would wait for the hung replica forever
    const r = await settledAfter(
      router.read('s1', {}, async (session) =>
        session.server === replica ? new Promise<string>(() => {}) : 'x',
      ),
      RYW_BUDGET_MS,
    );
    expect(r.readFrom).toBe('master');
    expect(r.value).toBe('x');
    expect(replica.calls).toBeGreaterThan(0);
  });

  it('excludes a replica that did not answer a read within the budget: the next reads go to the master at once', async () => {
    const { router, tick, replica, where } = setup();
    await tick();
    const slow = await router.read('s1', {}, async (session) =>
      session.server === replica ? new Promise<string>((r) => setTimeout(() => r('late'), 1000)) : 'x',
    );
    expect(slow.readFrom).toBe('master');
    const calls = replica.calls;
    // not asked again (no second slow query piling up there) until its probes re-admit it
    expect(await where()).toBe('master');
    expect(replica.calls).toBe(calls);
    await tick();
    await tick();
    expect(await where()).toBe('replica');
  });

  it('with the master unreachable, waits for a slow replica past the budget rather than fail the read', async () => {
    const { router, tick, replica, master } = setup();
    await tick();
    master.down = true;
    const started = Date.now();
    const r = await router.read('s1', { from: 'master-else-replica' }, async (session) =>
      session.server === replica ? new Promise<string>((res) => setTimeout(() => res('slow'), 400)) : 'x',
    );
    expect([r.readFrom, r.value]).toEqual(['replica', 'slow']);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
  });

  it('waits on a close replica, then reads there when it caught up in time', async () => {
    const { router, tick, replica } = setup();
    await tick();
    replica.catchesUpOnWait = true;
    const r = await router.read('s1', { position: token('0-1-9') }, async () => 'x');
    expect(r.readFrom).toBe('replica');
    expect(replica.waits).toBe(1);
  });

  it('reads from the master soon after ryw_timeout_ms when the replica does not answer its wait at all', async () => {
    const { router, tick, replica } = setup();
    await tick();
    replica.hangsOnWait = true;
    vi.useFakeTimers();
    // ryw_timeout_ms is 200 here; without a bound the read would wait for the hung replica forever
    const r = await settledAfter(
      router.read('s1', { position: token('0-1-9') }, async () => 'x'),
      RYW_BUDGET_MS,
    );
    expect(r.readFrom).toBe('master');
    expect(r.value).toBe('x');
    expect(replica.waits).toBe(1);
  });

  it('goes to the master when the replica does not reach the token in time', async () => {
    const { router, tick, replica } = setup();
    await tick();
    const r = await router.read('s1', { position: token('0-1-9') }, async () => 'x');
    expect(r.readFrom).toBe('master');
    expect(replica.waits).toBe(1);
  });

  it('does not wait when ryw_timeout_ms is 0', async () => {
    const { router, tick, replica, config } = setup();
    config.put('replication/ryw_timeout_ms', '0');
    await tick();
    expect((await router.read('s1', { position: token('0-1-9') }, async () => 'x')).readFrom).toBe('master');
    expect(replica.waits).toBe(0);
  });

  it('honours from: master', async () => {
    const { router, tick } = setup();
    await tick();
    expect((await router.read('s1', { from: 'master' }, async () => 1)).readFrom).toBe('master');
  });

  it('master-else-replica reads the master, and a replica only while the master is unreachable', async () => {
    const { router, tick, master } = setup();
    await tick();
    const read = () => router.read('s1', { from: 'master-else-replica' }, async (s) => s.server);
    expect((await read()).readFrom).toBe('master');
    master.down = true;
    expect((await read()).readFrom).toBe('replica');
    master.down = false;
    expect((await read()).readFrom).toBe('master');
  });
});

describe('shard router: a master that does not answer (master-else-replica)', () => {
  /** a member read: its query waits on the server while the server hangs */
  const memberRead = (router: ShardRouter<FakeSession>) =>
    router.read('s1', { from: 'master-else-replica' }, async (s) => {
      if (s.server.hang) await s.server.hang;
      return s.server;
    });
  const hang = (server: FakeServer) => {
    let resume = () => {};
    server.hang = new Promise((r) => {
      resume = r;
    });
    return () => {
      server.hang = undefined;
      resume();
    };
  };

  it('gives up on it after 500 ms for a replica, then skips it until a probe begun later answers', async () => {
    const { router, tick, master, replica } = setup();
    await tick();
    const resume = hang(master);
    vi.useFakeTimers();
    // without the budget the read would wait for the master as long as it hangs
    const first = await settledAfter(memberRead(router), 500);
    expect(first.readFrom).toBe('replica');
    expect(first.value).toBe(replica);
    expect(router.status()[0]!.master.unanswered).toBe('no answer to a read within 500 ms');
    // the next ones go to the replica at once: the master is not asked
    const calls = master.calls;
    expect((await memberRead(router)).readFrom).toBe('replica');
    expect(master.calls).toBe(calls);
    // a read that must use the master still does
    void router.read('s1', { from: 'master' }, async () => 1);
    expect(master.calls).toBe(calls + 1);
    vi.useRealTimers();
    resume();
    await tick();
    expect(router.status()[0]!.master.unanswered).toBeUndefined();
    expect((await memberRead(router)).readFrom).toBe('master');
  });

  it("the budget stays 250 ms below the master breaker's call timeout", async () => {
    const { router, tick, master, config } = setup();
    config.put('breakers/mysql-master/call_timeout_ms', '600');
    await tick();
    hang(master);
    vi.useFakeTimers();
    expect((await settledAfter(memberRead(router), 350)).readFrom).toBe('replica');
    expect(router.status()[0]!.master.unanswered).toBe('no answer to a read within 350 ms');
  });

  it('with no replica admitted, waits for the master its own time', async () => {
    const { router, master } = setup();
    const resume = hang(master);
    vi.useFakeTimers();
    let settled = false;
    const read = memberRead(router).then((r) => {
      settled = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(2000);
    expect(settled).toBe(false);
    resume();
    expect((await read).readFrom).toBe('master');
  });

  it('a read that waits past the budget for a connection of its own pool goes to a replica, without marking the master', async () => {
    const { router, tick, master } = setup();
    await tick();
    let free = () => {};
    master.poolWait = new Promise((r) => {
      free = r;
    });
    vi.useFakeTimers();
    expect((await settledAfter(memberRead(router), 500)).readFrom).toBe('replica');
    master.poolWait = undefined;
    free();
    await vi.advanceTimersByTimeAsync(1000);
    expect(router.status()[0]!.master.unanswered).toBeUndefined();
    expect((await memberRead(router)).readFrom).toBe('master');
  });

  it('a failed probe of the master sends such reads to a replica at once until one answers; a busy pool does not', async () => {
    const { router, tick, master } = setup();
    await tick();
    master.busy = true;
    await tick();
    expect(router.status()[0]!.master.unanswered).toBeUndefined();
    master.busy = false;
    master.down = true;
    await tick();
    expect(router.status()[0]!.master.unanswered).toMatch(/^probe failed: /);
    master.down = false;
    const calls = master.calls;
    expect((await memberRead(router)).readFrom).toBe('replica');
    expect(master.calls).toBe(calls);
    await tick();
    expect((await memberRead(router)).readFrom).toBe('master');
  });

  it('a probe begun before the mark cannot clear it: its answer may predate the hang', async () => {
    const { router, tick, master } = setup();
    await tick();
    vi.useFakeTimers();
    // a probe whose answer takes 800 ms, begun before the master hangs
    master.positionDelayMs = 800;
    const early = router.probeOnce();
    hang(master);
    const read = memberRead(router);
    await vi.advanceTimersByTimeAsync(500);
    expect((await read).readFrom).toBe('replica');
    expect(router.status()[0]!.master.unanswered).toBe('no answer to a read within 500 ms');
    await vi.advanceTimersByTimeAsync(300);
    await early;
    expect(router.status()[0]!.master.unanswered).toBe('no answer to a read within 500 ms');
  });

  it('a probe that times out waiting for a connection of its own pool does not mark the master', async () => {
    const { router, tick, master } = setup();
    await tick();
    master.poolWait = new Promise(() => {});
    vi.useFakeTimers();
    const round = router.probeOnce();
    await vi.advanceTimersByTimeAsync(1500);
    await round;
    expect(router.status()[0]!.master.unanswered).toBeUndefined();
  });

  it('while the master is marked, a replica read that fails with a query error falls back to the master', async () => {
    const { router, tick, master, replica } = setup();
    await tick();
    master.down = true;
    await tick();
    master.down = false;
    expect(router.status()[0]!.master.unanswered).toBeDefined();
    const r = await router.read('s1', { from: 'master-else-replica' }, async (s) => {
      if (s.server === replica) throw new Error('Unknown column');
      return s.server;
    });
    expect([r.readFrom, r.value]).toEqual(['master', master]);
  });

  it('a mark outlives a rebuild of the shard that keeps its master, not one that changes it', async () => {
    const { router, tick, master, config } = setup();
    await tick();
    master.down = true;
    await tick();
    master.down = false;
    config.put('shards/s1', shardJson([{ port: 1001, weight: 2 }]));
    expect(router.status()[0]!.master.unanswered).toMatch(/^probe failed: /);
    config.put(
      'shards/s1',
      JSON.stringify({
        master: { host: 'db', port: 1009 },
        replicas: [{ host: 'db', port: 1001, weight: 2 }],
      }),
    );
    expect(router.status()[0]!.master.unanswered).toBeUndefined();
  });

  it('a probe of the master that times out marks it too', async () => {
    const { router, tick, master } = setup();
    await tick();
    hang(master);
    vi.useFakeTimers();
    const round = router.probeOnce();
    await vi.advanceTimersByTimeAsync(1500);
    await round;
    expect(router.status()[0]!.master.unanswered).toBe('probe failed: probe timed out after 1500 ms');
  });
});

describe('shard router: config changes', () => {
  it('rebuilds a changed shard, releases the old nodes, and forgets a removed one', async () => {
    const { router, config, nodes } = setup();
    expect(nodes.refs.get('db:1001/shardgate')).toBe(1);
    config.put('shards/s1', shardJson([{ port: 1002 }]));
    expect(nodes.refs.get('db:1001/shardgate')).toBe(0);
    expect(nodes.refs.get('db:1002/shardgate')).toBe(1);
    expect(nodes.refs.get('db:1000/shardgate')).toBe(1);
    config.delete('shards/s1');
    expect(nodes.refs.get('db:1000/shardgate')).toBe(0);
    await expect(router.read('s1', {}, async () => 1)).rejects.toBeInstanceOf(DependencyError);
    router.close();
  });

  it('gives a replica moved to another address a fresh breaker, and drops the breakers of removed nodes', async () => {
    let breakers: BreakerRegistry | undefined;
    const { router, config, nodes } = setup([{ port: 1001 }, { port: 1003 }], {
      initial: {
        'shards/s2': shardJson([{ port: 1001 }]),
        'breakers/mysql-replica/failure_threshold': '2',
      },
      guardOf: (config) => {
        breakers = new BreakerRegistry({ config, logger: silentLogger, metrics: createNoopMetrics() });
        breakers.get('redis', 'redis');
        return breakerNodeGuard(breakers, { probeId: 'api-test' });
      },
    });
    const names = () => breakers!.list().map((b) => `${b.name} ${b.state}`);
    nodes.server(1003).down = true;
    await router.probeOnce();
    await router.probeOnce();
    expect(names()).toContain('mysql-replica:s1:2 open');
    // the dead replica's slot now names a live server: not its open breaker
    config.put('shards/s1', shardJson([{ port: 1001 }, { port: 1004 }]));
    expect(names()).toContain('mysql-replica:s1:2 closed');
    await router.probeOnce();
    expect(router.status()[0]?.replicas[1]?.state).not.toBe('excluded');
    // the second replica and then shard s2 go: so do their breakers, and nothing else
    config.put('shards/s1', shardJson([{ port: 1001 }]));
    config.delete('shards/s2');
    expect(names()).toEqual(['mysql-master:s1 closed', 'mysql-replica:s1:1 closed', 'redis closed']);
    router.close();
  });
});
