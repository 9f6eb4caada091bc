import { describe, expect, it } from 'vitest';
import { rememberNewest } from './remember-newest.js';

describe('rememberNewest', () => {
  it('keeps the newest max entries; a key set again becomes the newest', () => {
    const map = new Map<string, number>();
    for (const [i, key] of ['a', 'b', 'c'].entries()) rememberNewest(map, key, i, 3);
    rememberNewest(map, 'a', 10, 3);
    expect([...map]).toEqual([
      ['b', 1],
      ['c', 2],
      ['a', 10],
    ]);
    rememberNewest(map, 'd', 3, 3);
    expect([...map.keys()]).toEqual(['c', 'a', 'd']);
    rememberNewest(map, 'e', 4, 1);
    expect([...map]).toEqual([['e', 4]]);
  });
});
