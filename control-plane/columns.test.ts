import { describe, expect, it } from 'vitest';
import { alignColumns } from './columns.js';

describe('alignColumns', () => {
  it('pads each column to its widest cell, never the last, and leaves no trailing blanks', () => {
    expect(
      alignColumns([
        ['a-rather-long-shard-id', 'master h:1', 'tenants 3'],
        ['s1', 'master host-two:3306', 'tenants 12'],
        ['s2', '', ''],
      ]),
    ).toEqual([
      'a-rather-long-shard-id  master h:1            tenants 3',
      's1                      master host-two:3306  tenants 12',
      's2',
    ]);
    expect(alignColumns([])).toEqual([]);
  });
});
