import { describe, expect, it } from 'vitest';
import { STALL_MIN_MS, stallAwareTimeout, stalledMs, watchStalls } from './stall-watch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** holds the event loop, as a frozen process would not run its timers */
function hold(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // spin
  }
}

describe('stall-watch', () => {
  it('tells how long the process did not run in a span, and nothing of a span without a stall', async () => {
    watchStalls();
    await sleep(150);
    const before = performance.now();
    await sleep(200);
    expect(stalledMs(before)).toBe(0);
    const from = performance.now();
    hold(STALL_MIN_MS + 300);
    // the stall going on is counted before its tick ran
    expect(stalledMs(from)).toBeGreaterThanOrEqual(STALL_MIN_MS);
    await sleep(150);
    const seen = stalledMs(from);
    expect(seen).toBeGreaterThanOrEqual(STALL_MIN_MS);
    // the hold, and at most the turn in which the late tick ran (50 ms of slack for that turn)
    expect(seen).toBeLessThanOrEqual(STALL_MIN_MS + 300 + 50);
    // a span after it holds none of it
    expect(stalledMs(performance.now())).toBe(0);
  });

  it('stallAwareTimeout gives a wait the time the process did not run, once', async () => {
    watchStalls();
    await sleep(150);
    const fired: number[] = [];
    const start = performance.now();
    stallAwareTimeout(() => fired.push(performance.now() - start), 50);
    hold(STALL_MIN_MS + 200); // the wait's 50 ms pass while the process does not run
    await sleep(20);
    expect(fired).toEqual([]); // given back: not yet
    await sleep(100);
    expect(fired).toHaveLength(1);
    // without a stall it fires on time; cancelled, it never fires
    const plain: string[] = [];
    stallAwareTimeout(() => plain.push('fired'), 20);
    const cancel = stallAwareTimeout(() => plain.push('cancelled one fired'), 20);
    cancel();
    await sleep(60);
    expect(plain).toEqual(['fired']);
  });
});
