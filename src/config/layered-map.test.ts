import { describe, expect, it } from 'vitest';
import { LayeredMap } from './layered-map.js';

/** a small deterministic generator (mulberry32), so a failure repeats */
function generator(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

function sorted<K, V>(entries: Iterable<[K, V]>): [K, V][] {
  return [...entries].sort(([a], [b]) => String(a).localeCompare(String(b)));
}

function expectSame(layered: LayeredMap<string, number>, model: Map<string, number>, probes: string[]): void {
  expect(layered.size).toBe(model.size);
  expect(sorted(layered)).toEqual(sorted(model));
  expect(sorted(layered.entries())).toEqual(sorted(model.entries()));
  expect([...layered.keys()].sort()).toEqual([...model.keys()].sort());
  expect([...layered.values()].sort((a, b) => a - b)).toEqual([...model.values()].sort((a, b) => a - b));
  const seen: [string, number][] = [];
  layered.forEach((value, key, map) => {
    expect(map).toBe(layered);
    seen.push([key, value]);
  });
  expect(sorted(seen)).toEqual(sorted(model));
  for (const key of probes) {
    expect(layered.get(key)).toBe(model.get(key));
    expect(layered.has(key)).toBe(model.has(key));
  }
}

describe('LayeredMap', () => {
  it('answers like a Map through a random walk of puts and deletes, and every earlier map stays as it was', () => {
    const random = generator(7);
    const keys = Array.from({ length: 300 }, (_, i) => `k${i}`);
    const start = new Map(keys.slice(0, 150).map((k, i) => [k, i] as [string, number]));
    let layered = LayeredMap.over(new Map(start));
    let model = new Map(start);
    const history: { layered: LayeredMap<string, number>; model: Map<string, number> }[] = [];
    for (let step = 0; step < 600; step++) {
      const sets: [string, number][] = [];
      const deletes: string[] = [];
      // mostly single changes (a tenant put), now and then a batch (one watch response)
      const count = random(10) === 0 ? 1 + random(60) : 1;
      for (let i = 0; i < count; i++) {
        const key = keys[random(keys.length)]!;
        if (random(3) === 0) deletes.push(key);
        else sets.push([key, step * 1000 + i]);
      }
      const before = layered;
      layered = layered.with(sets, deletes);
      model = new Map(model);
      for (const [k, v] of sets) model.set(k, v);
      for (const k of deletes) model.delete(k);
      expect(before).not.toBe(layered);
      history.push({ layered, model });
    }
    for (const { layered: l, model: m } of history.filter((_, i) => i % 37 === 0 || i > 590))
      expectSame(l, m, keys);
  });

  it('deletes last when a key is both put and deleted in one change, and a key put back after its delete is there', () => {
    const a = LayeredMap.over(new Map([['x', 1]]));
    const b = a.with(
      [
        ['x', 2],
        ['y', 3],
      ],
      ['x', 'y', 'absent'],
    );
    expect(b.size).toBe(0);
    expect([...b]).toEqual([]);
    const c = b.with([['x', 4]]);
    expect(c.get('x')).toBe(4);
    expect(c.size).toBe(1);
    expect(a.get('x')).toBe(1);
    expect(a.size).toBe(1);
  });

  it('keeps an overlay of at most √size keys (at least 8): a change does not copy the whole map', () => {
    const big = new Map(Array.from({ length: 10_000 }, (_, i) => [`t${i}`, i] as [string, number]));
    let m = LayeredMap.over(big);
    for (let i = 0; i < 100; i++) {
      m = m.with([[`n${i}`, i]]);
      // the base is still the map given: no copy until the overlay passes √10,100 ≈ 100
      expect((m as unknown as { base: unknown }).base).toBe(big);
    }
    m = m.with([['n100', 100]]);
    expect((m as unknown as { base: unknown }).base).not.toBe(big);
    expect((m as unknown as { overlay: Map<string, number> }).overlay.size).toBe(0);
    expect(m.size).toBe(10_101);
    expect(big.size).toBe(10_000);
  });

  it('over() of a LayeredMap is that map; values may be undefined', () => {
    const m = LayeredMap.over(new Map<string, number | undefined>([['a', undefined]]));
    expect(LayeredMap.over(m)).toBe(m);
    const n = m.with([['b', undefined]], ['a']);
    expect(n.has('a')).toBe(false);
    expect(n.has('b')).toBe(true);
    expect(n.get('b')).toBeUndefined();
    expect(n.size).toBe(1);
  });
});
