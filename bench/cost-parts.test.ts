import { describe, expect, it } from 'vitest';
import { costLines, perRequestMs, totalMs, waitPerRequestMs } from './cost-parts.js';

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

describe('waitPerRequestMs', () => {
  it('turns each part’s wait for a core into ms per request; the rest of the machine is `other`', () => {
    const waiting = { processes: { 'api-1': 100, 'api-2': 20, bench: 10 }, all: 150 };
    // 120 % of a core for 2 s = 2400 ms over 400 requests = 6 ms; other: 150 - 120 = 30 % → 1.5 ms
    expect(waitPerRequestMs({ ...report, waiting }, 2, 400, { api: ['api-1', 'api-2'] })).toEqual({
      api: 6,
      other: 1.5,
    });
  });

  it('is undefined without schedstat', () => {
    expect(waitPerRequestMs(report, 2, 400, { api: ['api-1'] })).toBeUndefined();
  });
});

describe('costLines', () => {
  it('lists each part, then the total and the rate it allows on the given cores', () => {
    const lines = costLines({ api: 3, other: 1 }, 2);
    expect(lines[0]).toMatch(/^ {2}api +3\.000 ms$/);
    expect(lines.at(-1)).toMatch(/total +4\.000 ms CPU per request → at most 500\/s on 2 cores$/);
  });

  it('shows the wait for a core beside each part’s CPU when given', () => {
    const lines = costLines({ api: 3, other: 1 }, 2, { api: 6, other: 1.5 });
    expect(lines[0]).toMatch(/^ {2}api +3\.000 ms +waited for a core +6\.000 ms$/);
    expect(lines.at(-1)).toMatch(/at most 500\/s on 2 cores; 7\.500 ms waited for a core$/);
  });
});
