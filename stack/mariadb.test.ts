import { describe, expect, it } from 'vitest';
import { threadPoolGroups } from './mariadb.js';
import { topology } from './topology.js';

describe('threadPoolGroups', () => {
  it('shares the cores among the shards, at least one thread group each', () => {
    const shards = topology.shards.length;
    expect(threadPoolGroups(1)).toBe(1);
    expect(threadPoolGroups(shards)).toBe(1);
    expect(threadPoolGroups(shards * 4)).toBe(4);
    expect(threadPoolGroups(shards * 4 + 1)).toBe(4);
  });
});
