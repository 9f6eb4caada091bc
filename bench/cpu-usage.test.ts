import { describe, expect, it } from 'vitest';
import { type CpuSnapshot, cpuBetween, schedstatWait } from './cpu-usage.js';

// `snapshot()` against this machine's /proc, with 2 × cores busy processes, is in
// test/bench-cpu-usage.test.ts: not in the unit project, whose files run in parallel workers that
// the burners would starve

const machine = { user: 0, system: 0, iowait: 0, idle: 100, total: 100 };

describe('schedstatWait', () => {
  it('reads the run-queue delay, the second field', () => {
    expect(schedstatWait('306248581777 302129454580 1576890\n')).toBe(302129454580);
  });

  it('answers 0 for a line it cannot read', () => {
    expect(schedstatWait('')).toBe(0);
  });
});

describe('cpuBetween', () => {
  const at = (ms: number, ticks: number, waitNs: number | undefined): CpuSnapshot => ({
    at: ms,
    groups: new Map([[process.pid, ticks]]),
    waits: waitNs === undefined ? undefined : new Map([[process.pid, waitNs]]),
    processWaits: waitNs === undefined ? undefined : new Map([[process.pid, waitNs]]),
    machine,
  });

  it('turns the threads’ wait for a core into % of one core over the window', () => {
    // 3 s of waiting in a 2 s window: 150 % (one and a half threads waiting on average)
    const r = cpuBetween(at(0, 0, 1e9), at(2000, 100, 4e9));
    expect(r.processes.bench).toBe(50);
    expect(r.waiting).toEqual({ processes: { bench: 150 }, all: 150 });
  });

  it('sums the machine’s wait per process: one that ended does not hide the others’', () => {
    // a group of two: a process (pid 1001) that waited 3 s and ended during the window, and one
    // (pid 1002) that waited 2 s in it; the group's own sum fell by 1 s
    const snap = (ms: number, group: number, perPid: [number, number][]): CpuSnapshot => ({
      at: ms,
      groups: new Map([[1001, 0]]),
      waits: new Map([[1001, group]]),
      processWaits: new Map(perPid),
      machine,
    });
    const r = cpuBetween(
      snap(0, 3e9, [
        [1001, 3e9],
        [1002, 0],
      ]),
      snap(2000, 2e9, [[1002, 2e9]]),
    );
    expect(r.waiting?.all).toBe(100);
  });

  it('leaves waiting out when schedstat was not there', () => {
    expect(cpuBetween(at(0, 0, undefined), at(2000, 100, undefined)).waiting).toBeUndefined();
  });
});
