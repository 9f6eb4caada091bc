import { describe, expect, it } from 'vitest';
import { pendingMigrations } from './pending-migrations.js';

const journal = [
  { tag: 'a', when: 1 },
  { tag: 'b', when: 2 },
  { tag: 'c', when: 3 },
];
const tags = (found: ReturnType<typeof pendingMigrations>) => ({
  pending: found.pending.map((e) => e.tag),
  skipped: found.skipped.map((e) => e.tag),
  newer: found.newer,
});

describe('pendingMigrations', () => {
  it('is what drizzle applies: the entries newer than the last record', () => {
    expect(tags(pendingMigrations(journal, []))).toEqual({ pending: ['a', 'b', 'c'], skipped: [], newer: 0 });
    expect(tags(pendingMigrations(journal, [1]))).toEqual({ pending: ['b', 'c'], skipped: [], newer: 0 });
    expect(tags(pendingMigrations(journal, [1, 2, 3]))).toEqual({ pending: [], skipped: [], newer: 0 });
  });

  it('a record made twice hides nothing; a gap before the last record is skipped, never applied', () => {
    expect(tags(pendingMigrations(journal, [1, 1, 2]))).toEqual({ pending: ['c'], skipped: [], newer: 0 });
    expect(tags(pendingMigrations(journal, [1, 3]))).toEqual({ pending: [], skipped: ['b'], newer: 0 });
  });

  it("counts a newer build's records", () => {
    expect(tags(pendingMigrations(journal, [1, 2, 3, 4, 5, 5]))).toEqual({
      pending: [],
      skipped: [],
      newer: 2,
    });
  });
});
