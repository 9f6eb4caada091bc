import { describe, expect, it } from 'vitest';
import { parseGtid } from './gtid.js';
import { MasterTimeline } from './master-timeline.js';

const p = (t: string) => parseGtid('mariadb', t)!;

describe('lag from the master timeline', () => {
  it('is 0 for a replica that has everything, even when both are idle', () => {
    const t = new MasterTimeline();
    t.record(p('0-1-5'), 1000);
    t.record(p('0-1-5'), 2000);
    expect(t.lagSeconds(p('0-1-5'), 60_000)).toBe(0);
  });

  it('grows from the first master position the replica has not applied (SQL thread stopped)', () => {
    const t = new MasterTimeline();
    t.record(p('0-1-5'), 1000);
    t.record(p('0-1-6'), 2000);
    t.record(p('0-1-9'), 3000);
    expect(t.lagSeconds(p('0-1-5'), 2500)).toBe(0.5);
    expect(t.lagSeconds(p('0-1-5'), 7000)).toBe(5);
    expect(t.lagSeconds(p('0-1-6'), 7000)).toBe(4);
    expect(t.lagSeconds(p('0-1-9'), 7000)).toBe(0);
  });

  it('prunes what every replica has applied and stays bounded', () => {
    const t = new MasterTimeline(3);
    for (let i = 1; i <= 10; i++) t.record(p(`0-1-${i}`), i * 1000);
    expect(t.size).toBe(3);
    t.prune([p('0-1-9')]);
    expect(t.size).toBe(1);
    expect(t.lagSeconds(p('0-1-9'), 20_000)).toBe(10);
  });

  it('never forgets the oldest unapplied time when full: a replica behind all samples shows its whole lag', () => {
    const t = new MasterTimeline(3);
    for (let i = 1; i <= 1000; i++) t.record(p(`0-1-${i}`), i * 1000);
    expect(t.size).toBe(3);
    // stopped before the first write: 1,000 s of samples, though only 3 are kept
    expect(t.lagSeconds(p('0-1-0'), 1_001_000)).toBe(1000);
    // part-way through the merged span: the span's start, an overestimate (stays excluded)
    expect(t.lagSeconds(p('0-1-500'), 1_001_000)).toBe(1000);
    // the newest samples keep their own times
    expect(t.lagSeconds(p('0-1-999'), 1_001_000)).toBe(1);
  });
});
