import { closeSync, openSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LogDestination } from './log-destination.js';
import { createNoopMetrics, type Labels, type Metrics } from './metrics.js';

/** a destination's fd: what it took, and how it answers the next writes */
class FakeFd {
  written = '';
  calls = 0;
  /** the error code each write throws while set */
  failing: string | undefined;
  /** bytes a write takes at most */
  chunk = Number.POSITIVE_INFINITY;
  /** writes left before `failing` applies (part of a line goes first) */
  before = 0;

  readonly writeSync = (_fd: number, data: Uint8Array): number => {
    this.calls++;
    if (this.failing && this.before-- <= 0) {
      throw Object.assign(new Error(`${this.failing}: fake`), { code: this.failing });
    }
    const n = Math.min(data.length, this.chunk);
    this.written += Buffer.from(data.subarray(0, n)).toString('utf8');
    return n;
  };
}

function counting(): { metrics: Metrics; counts: Map<string, number> } {
  const counts = new Map<string, number>();
  const metrics = createNoopMetrics();
  metrics.counter = () => ({
    inc(labels?: Labels, value = 1) {
      const reason = String(labels?.reason);
      counts.set(reason, (counts.get(reason) ?? 0) + value);
    },
  });
  return { metrics, counts };
}

const line = (i: number) => `{"msg":"line ${i}"}\n`;

afterEach(() => {
  vi.useRealTimers();
});

describe('LogDestination', () => {
  it('writes each line whole and in order, over partial writes', () => {
    const fd = new FakeFd();
    fd.chunk = 3;
    const dest = new LogDestination({ fd: 99, writeSync: fd.writeSync });
    for (let i = 0; i < 3; i++) dest.write(line(i));
    expect(fd.written).toBe(line(0) + line(1) + line(2));
    expect(dest.dropped()).toEqual({});
  });

  it('drops and counts lines the destination refuses (ENOSPC), writes again once it takes them, and reports the drop once', async () => {
    const fd = new FakeFd();
    const dest = new LogDestination({ fd: 99, writeSync: fd.writeSync });
    const reports: [number, string][] = [];
    dest.reportDropsWith((n, reason) => reports.push([n, reason]));
    const { metrics, counts } = counting();

    dest.write(line(0));
    fd.failing = 'ENOSPC';
    for (let i = 1; i <= 3; i++) expect(() => dest.write(line(i))).not.toThrow();
    // one attempt per line, no retry loop
    expect(fd.calls).toBe(4);
    dest.countDropsIn(metrics);
    expect(counts.get('ENOSPC')).toBe(3);
    fd.failing = 'EIO';
    dest.write(line(4));
    expect(counts.get('EIO')).toBe(1);
    await Promise.resolve();
    expect(reports).toEqual([]);

    fd.failing = undefined;
    dest.write(line(5));
    expect(fd.written).toBe(line(0) + line(5));
    expect(dest.dropped()).toEqual({ ENOSPC: 3, EIO: 1 });
    await Promise.resolve();
    expect(reports).toEqual([
      [3, 'ENOSPC'],
      [1, 'EIO'],
    ]);
    dest.write(line(6));
    await Promise.resolve();
    expect(reports).toHaveLength(2);
  });

  it('ends a line a refused write cut short with a newline before the next one', () => {
    const fd = new FakeFd();
    fd.chunk = 5;
    fd.failing = 'ENOSPC';
    fd.before = 1;
    const dest = new LogDestination({ fd: 99, writeSync: fd.writeSync });
    dest.write(line(0));
    // the newline is refused too: the next line goes, the newline is still owed
    dest.write(line(1));
    fd.failing = undefined;
    fd.chunk = Number.POSITIVE_INFINITY;
    dest.write(line(2));
    expect(fd.written).toBe(`${line(0).slice(0, 5)}\n${line(2)}`);
    expect(dest.dropped()).toEqual({ ENOSPC: 2 });
  });

  it('holds lines in order while the destination answers EAGAIN, without sleeping, and writes them when it takes them', () => {
    vi.useFakeTimers();
    const fd = new FakeFd();
    fd.chunk = 4;
    fd.failing = 'EAGAIN';
    fd.before = 1;
    const dest = new LogDestination({ fd: 99, writeSync: fd.writeSync, retryMs: 100 });
    const exitListeners = process.listenerCount('exit');
    dest.write(line(0));
    dest.write(line(1));
    expect(fd.written).toBe(line(0).slice(0, 4));
    expect(process.listenerCount('exit')).toBe(exitListeners + 1);

    // tried again after retryMs, with no new line
    fd.failing = undefined;
    vi.advanceTimersByTime(100);
    expect(fd.written).toBe(line(0) + line(1));
    expect(dest.dropped()).toEqual({});
    expect(process.listenerCount('exit')).toBe(exitListeners);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('at exit, tries held lines again until the reader takes them, or counts what is still held as dropped', () => {
    const exitOf = (dest: LogDestination) => (dest as unknown as { atExit: () => void }).atExit;
    // a reader that takes the lines a few tries later
    const slow = new FakeFd();
    slow.failing = 'EAGAIN';
    let refusals = 3;
    const writeSync = slow.writeSync;
    const later = new LogDestination({
      fd: 99,
      writeSync: (fd, data) => {
        if (refusals-- <= 0) slow.failing = undefined;
        return writeSync(fd, data);
      },
    });
    later.write(line(0));
    later.write(line(1));
    exitOf(later)();
    expect(slow.written).toBe(line(0) + line(1));
    expect(later.dropped()).toEqual({});
    // a reader that never reads again: counted
    const stuck = new FakeFd();
    stuck.failing = 'EAGAIN';
    const lost = new LogDestination({ fd: 99, writeSync: stuck.writeSync });
    lost.write(line(2));
    lost.write(line(3));
    const calls = stuck.calls;
    exitOf(lost)();
    expect(stuck.calls - calls).toBeGreaterThan(1);
    expect(lost.dropped()).toEqual({ EAGAIN: 2 });
  });

  it('drops the lines that do not fit in maxHeldBytes while EAGAIN lasts, as EAGAIN', async () => {
    vi.useFakeTimers();
    const fd = new FakeFd();
    fd.failing = 'EAGAIN';
    const dest = new LogDestination({ fd: 99, writeSync: fd.writeSync, maxHeldBytes: 2 * line(0).length });
    const reports: [number, string][] = [];
    dest.reportDropsWith((n, reason) => reports.push([n, reason]));
    for (let i = 0; i < 5; i++) dest.write(line(i));
    expect(dest.dropped()).toEqual({ EAGAIN: 3 });
    // a retry finds the reader still stopped: the timer stays armed, nothing spins
    const calls = fd.calls;
    vi.advanceTimersByTime(100);
    expect(fd.calls).toBe(calls + 1);

    fd.failing = undefined;
    dest.write(line(5));
    expect(fd.written).toBe(line(0) + line(1) + line(5));
    await Promise.resolve();
    expect(reports).toEqual([[3, 'EAGAIN']]);
  });

  it('counts dropped lines on a real fd that refuses every write (/dev/full)', () => {
    const fd = openSync('/dev/full', 'w');
    try {
      const dest = new LogDestination({ fd });
      for (let i = 0; i < 3; i++) dest.write(line(i));
      expect(dest.dropped()).toEqual({ ENOSPC: 3 });
    } finally {
      closeSync(fd);
    }
  });
});
