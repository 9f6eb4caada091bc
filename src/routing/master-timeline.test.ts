import { describe, expect, it } from 'vitest';
import { parseGtid } from './gtid.js';
import { MasterTimeline } from './master-timeline.js';

const p = (t: string) => parseGtid('mariadb', t)!;

describe('lag from the master timeline', () => {
  it('is 0 for a replica that has everything, even when both are idle', () => {
    const t = new MasterTimeline();
    t.record(p('0-1-5'), 1000);
    t.record(p('0-1-5'), 2000);
    expect(t.lag(p('0-1-5'), 60_000).seconds).toBe(0);
  });

  it('grows from the first master position the replica has not applied (SQL thread stopped)', () => {
    const t = new MasterTimeline();
    t.record(p('0-1-5'), 1000);
    t.record(p('0-1-6'), 2000);
    t.record(p('0-1-9'), 3000);
    expect(t.lag(p('0-1-5'), 2500).seconds).toBe(0.5);
    expect(t.lag(p('0-1-5'), 7000).seconds).toBe(5);
    expect(t.lag(p('0-1-6'), 7000).seconds).toBe(4);
    expect(t.lag(p('0-1-9'), 7000).seconds).toBe(0);
  });

  it('prunes what every replica has applied and stays bounded', () => {
    const t = new MasterTimeline(3);
    for (let i = 1; i <= 10; i++) t.record(p(`0-1-${i}`), i * 1000);
    expect(t.size).toBe(3);
    t.prune([p('0-1-9')]);
    expect(t.size).toBe(2); // the newest sample the replica applied stays first, then the newest
    expect(t.lag(p('0-1-9'), 20_000).seconds).toBe(10);
  });

  it('never forgets the oldest unapplied time when full: a replica behind all samples shows its whole lag', () => {
    const t = new MasterTimeline(3);
    for (let i = 1; i <= 1000; i++) t.record(p(`0-1-${i}`), i * 1000);
    expect(t.size).toBe(3);
    // stopped before the first write: 1,000 s of samples, though only 3 are kept
    expect(t.lag(p('0-1-0'), 1_001_000).seconds).toBe(1000);
    // part-way through the merged span (the first sample is never merged): the span's start, an
    // overestimate (stays excluded)
    expect(t.lag(p('0-1-500'), 1_001_000).seconds).toBe(999);
    // the newest samples keep their own times
    expect(t.lag(p('0-1-999'), 1_001_000).seconds).toBe(1);
  });

  it('gives only a lower bound for a replica behind the oldest sample kept (or with no sample at all)', () => {
    const t = new MasterTimeline();
    expect(t.lag(p('0-1-5'), 1000)).toEqual({ seconds: 0, atLeast: true });
    t.record(p('0-1-900'), 1000);
    t.record(p('0-1-901'), 2000);
    // hours behind, but this timeline only knows the last 2 s: at least 2 s, how much more unknown
    expect(t.lag(p('0-1-5'), 3000)).toEqual({ seconds: 2, atLeast: true });
    expect(t.lag(p('0-1-900'), 3000)).toEqual({ seconds: 1, atLeast: false });
    expect(t.lag(p('0-1-901'), 3000)).toEqual({ seconds: 0, atLeast: false });
  });

  it('prunes down to the newest sample every listed replica applied: their lag stays exact, an unlisted one gets a lower bound', () => {
    const t = new MasterTimeline();
    for (let i = 1; i <= 5; i++) t.record(p(`0-1-${i}`), i * 1000);
    t.prune([p('0-1-3'), p('0-1-4')]);
    expect(t.size).toBe(3); // 0-1-3 (applied by both), 0-1-4, 0-1-5
    // the replica at 0-1-3 stalls: its lag grows from 0-1-4's time, exactly
    expect(t.lag(p('0-1-3'), 10_000)).toEqual({ seconds: 6, atLeast: false });
    // a replica that was not listed (added, never probed) and lacks 0-1-3: at least 7 s
    expect(t.lag(p('0-1-1'), 10_000)).toEqual({ seconds: 7, atLeast: true });
  });

  it('never merges the oldest sample away when full', () => {
    const t = new MasterTimeline(3);
    for (let i = 1; i <= 10; i++) t.record(p(`0-1-${i}`), i * 1000);
    expect(t.lag(p('0-1-1'), 20_000)).toEqual({ seconds: 18, atLeast: false });
    expect(t.lag(p('0-1-0'), 20_000)).toEqual({ seconds: 19, atLeast: true });
  });

  it('restarts from a position that lacks the last one (the history went back) and says which it left', () => {
    const t = new MasterTimeline();
    expect(t.record(p('0-11-8314'), 1000)).toBeUndefined();
    expect(t.record(p('0-11-8315'), 2000)).toBeUndefined();
    // RESET MASTER: sequence numbers start again
    expect(t.record(p('0-11-3'), 3000)).toEqual(p('0-11-8315'));
    expect(t.size).toBe(1);
    // a replica that follows the new history is not behind the old samples
    expect(t.lag(p('0-11-3'), 60_000)).toEqual({ seconds: 0, atLeast: false });
    expect(t.record(p('0-11-4'), 4000)).toBeUndefined();
    expect(t.lag(p('0-11-3'), 5000).seconds).toBe(1);
    // a domain gone is a history gone too; a new domain beside the others is not
    expect(t.record(p('0-11-4,5-11-1'), 5000)).toBeUndefined();
    expect(t.record(p('5-11-2'), 6000)).toEqual(p('0-11-4,5-11-1'));
  });

  it("compares a new master's first position with the previous master's last", () => {
    const kept = new MasterTimeline(undefined, p('0-11-100'));
    expect(kept.record(p('0-12-101'), 1000)).toBeUndefined();
    expect(kept.record(p('0-12-102'), 2000)).toBeUndefined();
    // promoted while 3 writes behind: those writes are not in its history
    const behind = new MasterTimeline(undefined, p('0-11-100'));
    expect(behind.record(p('0-12-97'), 1000)).toEqual(p('0-11-100'));
    expect(behind.record(p('0-12-98'), 2000)).toBeUndefined();
    expect(behind.last).toEqual(p('0-12-98'));
  });
});
