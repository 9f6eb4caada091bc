import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { type CpuSnapshot, cpuBetween, schedstatWait, snapshot } from './cpu-usage.js';

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

describe('snapshot (this machine, /proc)', () => {
  it('sees busy processes wait for a core when there are twice as many as cores', async () => {
    const n = cpus().length * 2;
    const burners = Array.from({ length: n }, () =>
      spawn(process.execPath, ['-e', 'const end = Date.now() + 1500; while (Date.now() < end);'], {
        stdio: 'ignore',
      }),
    );
    try {
      await new Promise((r) => setTimeout(r, 200)); // all of them running
      const a = snapshot();
      await new Promise((r) => setTimeout(r, 800));
      const b = snapshot();
      const extras = Object.fromEntries(burners.map((c, i) => [`burner-${i}`, c.pid ?? 0]));
      const r = cpuBetween(a, b, extras);
      expect(r.waiting).toBeDefined();
      const waited = burners.map((_, i) => r.waiting!.processes[`burner-${i}`] ?? 0);
      const used = burners.map((_, i) => r.processes[`burner-${i}`] ?? 0);
      // n busy processes on n/2 cores: together they run about n/2 cores' worth and wait about as
      // long. How much they run depends on what else the cores do (the rest of the test run, other
      // load: 42 % of a core for 4 burners seen on 2 cores), so only that each ran is asked for;
      // other load only makes them wait longer, so a quarter of their time waiting is
      for (const [i, v] of used.entries()) expect(v, `burner-${i}`).toBeGreaterThan(0);
      expect(waited.reduce((s, v) => s + v, 0)).toBeGreaterThan(25 * n);
      expect(r.waiting!.all).toBeGreaterThanOrEqual(waited.reduce((s, v) => s + v, 0) - 1);
    } finally {
      for (const c of burners) c.kill('SIGKILL');
    }
  });
});
