import { describe, expect, it } from 'vitest';
import { pairedSummary } from './paired.js';

describe('pairedSummary', () => {
  it('compares B with A round by round and on the means', () => {
    const s = pairedSummary([100, 200, 100, 50], [110, 190, 101, 60]);
    expect(s).toMatchObject({ rounds: 4, meanA: 112.5, meanB: 115.25, higher: 2, lower: 1, ties: 1 });
    expect(s.change).toBeCloseTo(115.25 / 112.5 - 1, 10);
  });

  it('refuses rounds that do not pair up', () => {
    expect(() => pairedSummary([1, 2], [1])).toThrow(/as many rounds/);
    expect(() => pairedSummary([], [])).toThrow(/at least one/);
  });
});
