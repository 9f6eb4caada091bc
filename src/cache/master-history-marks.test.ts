import { describe, expect, it, vi } from 'vitest';
import { parseGtid } from '../routing/gtid.js';
import { MasterHistoryMarks, masterHistoryKey } from './master-history-marks.js';
import { MemoryCacheStore } from './memory.js';

const p = (t: string) => parseGtid('mariadb', t)!;

function marks(store = new MemoryCacheStore()) {
  const told: [string, string, string][] = [];
  let now = 0;
  const m = new MasterHistoryMarks(
    store,
    (...a) => told.push(a),
    5000,
    () => now,
  );
  return { m, store, told, advance: (ms: number) => (now += ms) };
}

describe('MasterHistoryMarks', () => {
  it("finds at an instance's first sample a master behind the mark of the instances before (a restore while none ran)", async () => {
    const { m, store, told, advance } = marks();
    m.seen('shard-1', p('0-11-8314'));
    await vi.waitFor(async () => expect(await store.get(masterHistoryKey('shard-1'))).toBeDefined());
    advance(6000);
    m.seen('shard-1', p('0-11-8400'));
    // every instance stopped; RESET MASTER; a new instance starts
    const next = new MasterHistoryMarks(store, (...a) => told.push(a));
    next.seen('shard-1', p('0-11-3'));
    await vi.waitFor(() => expect(told).toEqual([['shard-1', '0-11-8400', '0-11-3']]));
    // and marks the new history: the next start finds nothing
    await vi.waitFor(async () => expect(await store.get(masterHistoryKey('shard-1'))).toContain('0-11-3'));
    const third = new MasterHistoryMarks(store, (...a) => told.push(a));
    third.seen('shard-1', p('0-11-5'));
    await new Promise((r) => setTimeout(r, 10));
    expect(told).toHaveLength(1);
  });

  it('tells nothing for a master ahead of the mark, a shard without one, or a mark it cannot read', async () => {
    const { m, store, told } = marks();
    await store.set(masterHistoryKey('shard-1'), JSON.stringify({ flavour: 'mariadb', gtid: '0-11-5' }), 60);
    await store.set(masterHistoryKey('shard-3'), 'not json', 60);
    m.seen('shard-1', p('0-11-9'));
    m.seen('shard-2', p('0-21-1'));
    m.seen('shard-3', p('0-31-1'));
    await new Promise((r) => setTimeout(r, 10));
    expect(told).toEqual([]);
    expect(await store.get(masterHistoryKey('shard-3'))).toContain('0-31-1');
  });

  it('stores later samples at most every 5 s, and compares again after a first read that failed', async () => {
    const store = new MemoryCacheStore();
    let failing = true;
    const sets: string[] = [];
    const flaky = {
      get: (k: string) => (failing ? Promise.reject(new Error('down')) : store.get(k)),
      set: (k: string, v: string, ttl: number) => {
        sets.push(v);
        return store.set(k, v, ttl);
      },
    };
    let now = 0;
    const told: string[] = [];
    const m = new MasterHistoryMarks(
      flaky,
      (s) => told.push(s),
      5000,
      () => now,
    );
    await store.set(
      masterHistoryKey('shard-1'),
      JSON.stringify({ flavour: 'mariadb', gtid: '0-11-100' }),
      60,
    );
    m.seen('shard-1', p('0-11-3'));
    await new Promise((r) => setTimeout(r, 10));
    expect([told, sets]).toEqual([[], []]);
    failing = false;
    m.seen('shard-1', p('0-11-4'));
    await vi.waitFor(() => expect(told).toEqual(['shard-1']));
    expect(sets).toHaveLength(1);
    now += 1000;
    m.seen('shard-1', p('0-11-5'));
    expect(sets).toHaveLength(1);
    now += 5000;
    m.seen('shard-1', p('0-11-6'));
    expect(sets).toHaveLength(2);
  });
});
