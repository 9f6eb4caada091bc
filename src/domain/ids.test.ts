import { describe, expect, it } from 'vitest';
import { idFloor, idTime, newId } from './ids.js';

describe('ids', () => {
  it('idTime reads back the time newId was given', () => {
    for (const ms of [0, 1, 1_700_000_000_123, Date.now(), 2 ** 48 - 1]) expect(idTime(newId(ms))).toBe(ms);
  });

  it('ids made across many refills of the random pool never repeat their random part', () => {
    const randomParts = new Set<string>();
    // 10,000 ids, each in a millisecond of its own (so each draws from the pool): about 39 refills
    // of the 256-id pool
    for (let i = 0; i < 10_000; i++) randomParts.add(newId(1_764_000_000_000 + i).slice(10));
    expect(randomParts.size).toBe(10_000);
  });

  it('ids made in one millisecond sort in the order they were made, and are unique', () => {
    const ids = Array.from({ length: 5000 }, () => newId(1_764_000_000_500));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    // (5,000 steps of one carry into the next digit every 32)
    for (const id of ids) expect(idTime(id)).toBe(1_764_000_000_500);
  });

  it('idTime is undefined for strings newId cannot make', () => {
    for (const s of [
      '',
      'abc',
      '01ARZ3NDEKTSV4RRFFQ69G5FA',
      '01ARZ3NDEKTSV4RRFFQ69G5FAVX',
      '01ARZ3NDEKTSV4RRFFQ69G5FAI',
    ])
      expect(idTime(s)).toBeUndefined();
  });

  it('idFloor(ms) sorts above every id made before ms and not above any id made at or after it', () => {
    const ms = 1_764_000_000_000;
    const floor = idFloor(ms);
    expect(idTime(floor)).toBe(ms);
    for (let i = 0; i < 200; i++) {
      expect(newId(ms - 1 - i * 997) < floor).toBe(true);
      expect(newId(ms + i * 997) >= floor).toBe(true);
    }
  });
});
