import { describe, expect, it, vi } from 'vitest';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { reportAfterWrites, WritesInFlight } from './writes-in-flight.js';

const acme = { id: 'acme', shardId: 'shard-1' };
const acmeConfig = () =>
  new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
const globex = { id: 'globex', shardId: 'shard-1' };
/** whether a promise settled within the microtasks queued so far */
const settledNow = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => {
    done = true;
  });
  await new Promise((r) => setImmediate(r));
  return done;
};

describe('WritesInFlight', () => {
  it('waits for the writes of earlier revisions that the new config refuses, not for others', async () => {
    const writes = new WritesInFlight();
    const releaseAcme = writes.hold(acme, 5);
    const releaseGlobex = writes.hold(globex, 5);
    const releaseLater = writes.hold(acme, 7);
    expect(writes.size).toBe(3);
    const refusesAcme = (t: { id: string }) => t.id === 'acme';
    const settled = writes.settled(7, refusesAcme);
    expect(await settledNow(settled)).toBe(false);
    // a write checked under revision 7 (or later) already saw that config
    releaseLater();
    expect(await settledNow(settled)).toBe(false);
    releaseAcme();
    expect(await settledNow(settled)).toBe(true);
    // globex's write is not refused by revision 7: never waited for
    expect(await settledNow(writes.settled(7, refusesAcme))).toBe(true);
    releaseGlobex();
    expect(writes.size).toBe(0);
  });

  it('releasing twice is harmless', async () => {
    const writes = new WritesInFlight();
    const release = writes.hold(acme, 1);
    release();
    release();
    expect(writes.size).toBe(0);
    expect(await settledNow(writes.settled(2, () => true))).toBe(true);
  });
});

describe('reportAfterWrites', () => {
  it('reports a revision that makes a tenant readonly only after its held write finished, and in order', async () => {
    const config = acmeConfig();
    const writes = new WritesInFlight();
    const reported: number[] = [];
    reportAfterWrites(config, writes, (revision) => reported.push(revision));
    const release = writes.hold(acme, config.current().revision);
    config.put('cache/ttl_seconds', '30');
    const unrelated = config.current().revision;
    await new Promise((r) => setImmediate(r));
    expect(reported).toEqual([unrelated]);
    config.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
    const readonly = config.current().revision;
    config.put('cache/ttl_seconds', '31');
    const after = config.current().revision;
    await new Promise((r) => setImmediate(r));
    // neither the readonly revision nor any after it, while acme's write may still commit
    expect(reported).toEqual([unrelated]);
    release();
    await new Promise((r) => setImmediate(r));
    expect(reported).toEqual([unrelated, readonly, after]);
  });
});

describe('reportAfterWrites past its bound', () => {
  it('reports a revision anyway once a hold outlived maxWaitMs, and says so', async () => {
    const config = acmeConfig();
    const writes = new WritesInFlight();
    const reported: number[] = [];
    const overdue: [number, number][] = [];
    reportAfterWrites(
      config,
      writes,
      (revision) => reported.push(revision),
      (revision, held) => overdue.push([revision, held]),
      50,
    );
    vi.useFakeTimers();
    try {
      writes.hold(acme, config.current().revision); // never released: a leak
      config.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
      const revision = config.current().revision;
      await vi.advanceTimersByTimeAsync(49);
      expect(reported).toEqual([]);
      await vi.advanceTimersByTimeAsync(1);
      expect(reported).toEqual([revision]);
      expect(overdue).toEqual([[revision, 1]]);
    } finally {
      vi.useRealTimers();
    }
  });
});
