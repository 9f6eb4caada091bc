import { describe, expect, it } from 'vitest';
import { masterThreadGroups } from './mariadb.js';
import { topology } from './topology.js';

describe('masterThreadGroups', () => {
  it('shares the cores among the masters, at least one thread group each', () => {
    const masters = topology.shards.length;
    expect(masterThreadGroups(1)).toBe(1);
    expect(masterThreadGroups(masters)).toBe(1);
    expect(masterThreadGroups(masters * 4)).toBe(4);
    expect(masterThreadGroups(masters * 4 + 1)).toBe(4);
  });
});
