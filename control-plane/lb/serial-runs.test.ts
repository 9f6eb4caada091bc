import { describe, expect, it } from 'vitest';
import { SerialRuns } from './serial-runs.js';

/** a job whose runs each wait until the test lets them end */
function gatedJob() {
  const gates: Array<() => void> = [];
  let started = 0;
  const job = () =>
    new Promise<void>((resolve) => {
      started++;
      gates.push(resolve);
    });
  return {
    job,
    started: () => started,
    endRun: async () => {
      gates.shift()?.();
      // let the loop's awaits settle
      for (let i = 0; i < 5; i++) await Promise.resolve();
    },
  };
}

describe('SerialRuns (lb sync --watch ticks)', () => {
  it('runs one job at a time, and asks made during a run give exactly one more run right after it', async () => {
    const g = gatedJob();
    const runs = new SerialRuns(g.job);
    runs.run();
    runs.run();
    runs.run();
    expect(g.started()).toBe(1);
    await g.endRun();
    expect(g.started()).toBe(2);
    await g.endRun();
    expect(g.started()).toBe(2);
    runs.run();
    expect(g.started()).toBe(3);
    await g.endRun();
  });

  it('close waits for the run in progress, drops the one asked for after it, and refuses new ones', async () => {
    const g = gatedJob();
    const runs = new SerialRuns(g.job);
    runs.run();
    runs.run();
    let closed = false;
    const closing = runs.close().then(() => {
      closed = true;
    });
    for (let i = 0; i < 5; i++) await Promise.resolve();
    expect(closed).toBe(false);
    await g.endRun();
    await closing;
    expect(closed).toBe(true);
    runs.run();
    expect(g.started()).toBe(1);
  });

  it('close with nothing running resolves at once', async () => {
    const g = gatedJob();
    const runs = new SerialRuns(g.job);
    await runs.close();
    runs.run();
    expect(g.started()).toBe(0);
  });

  it('a job that throws is reported, and the next run goes ahead', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const runs = new SerialRuns(
      async () => {
        calls++;
        if (calls === 1) throw new Error('boom');
      },
      (e) => errors.push(e),
    );
    runs.run();
    await new Promise((r) => setImmediate(r));
    expect(errors.map((e) => (e as Error).message)).toEqual(['boom']);
    runs.run();
    await runs.close();
    expect(calls).toBe(2);
    expect(errors).toHaveLength(1);
  });
});
