/**
 * bench/cpu-usage.ts's `snapshot()` against this machine's /proc: busy processes, twice as many as
 * cores, are seen waiting for a core. Needs no stack; it lives in test/ (files run one at a time)
 * rather than beside the code in the unit project, where its 2 × cores CPU burners would starve
 * every unit test running in parallel with it. `cpuBetween` itself is unit-tested with synthetic
 * snapshots in bench/cpu-usage.test.ts.
 */
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import { describe, expect, it } from 'vitest';
import { cpuBetween, snapshot } from '../bench/cpu-usage.js';

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
