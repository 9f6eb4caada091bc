import { describe, expect, it } from 'vitest';
import { costLines, perRequestMs, totalMs } from './cost-parts.js';

const report = {
  processes: { 'api-1': 40, 'api-2': 20, bench: 10, 'shard-1-master': 30 },
  other: 5,
  machine: { user: 40, system: 10, iowait: 0, idle: 50 },
};

describe('perRequestMs', () => {
  it('turns % of a core over the window into ms of CPU per request, part by part', () => {
    // 60 % of a core for 2 s = 1200 ms, over 400 requests = 3 ms each
    const ms = perRequestMs(report, 2, 400, {
      api: ['api-1', 'api-2'],
      db: ['shard-1-master', 'shard-2-master'],
    });
    expect(ms).toEqual({ api: 3, db: 1.5, other: 0.25 });
    expect(totalMs(ms)).toBeCloseTo(4.75, 10);
  });

  it('answers 0 for every part when nothing was done', () => {
    expect(perRequestMs(report, 2, 0, { api: ['api-1'] })).toEqual({ api: 0, other: 0 });
  });
});

describe('costLines', () => {
  it('lists each part, then the total and the rate it allows on the given cores', () => {
    const lines = costLines({ api: 3, other: 1 }, 2);
    expect(lines[0]).toMatch(/^ {2}api +3\.000 ms$/);
    expect(lines.at(-1)).toMatch(/total +4\.000 ms CPU per request → at most 500\/s on 2 cores/);
  });
});
