/**
 * `process_open_fds` and `process_max_fds` in place of prom-client's defaults (Linux only, as
 * those are):
 * - prom-client's `process_open_fds` counts the entries of `/proc/self/fd` and keeps its last
 *   value when the listing fails, and listing needs a descriptor of its own: a process out of
 *   descriptors (EMFILE) showed the count from before the shortage, the gauge frozen while every
 *   new socket failed (an outside check). This one reports, when the listing fails with EMFILE,
 *   the soft limit on open files (the process holds that many: that is what EMFILE says), and NaN
 *   when it fails otherwise or the limit is not known (ENFILE: the system's table is full, this
 *   process's count is not known).
 * - prom-client's `process_max_fds` is read once at start: a limit changed on the running process
 *   (`prlimit --pid`, as an operator raising it during a shortage would) was never shown. This one
 *   is `softLimit()` at each scrape (entry/file-limit.ts reads it again from a descriptor kept open).
 */
import { readdirSync } from 'node:fs';
import { Gauge, type Registry } from 'prom-client';
import { ownResourceShortage } from '../resilience/own-resources.js';

export const OPEN_FDS = 'process_open_fds';
export const MAX_FDS = 'process_max_fds';

export interface FdGaugesOptions {
  /** this process's soft limit on open files, undefined when not known (entry/file-limit.ts) */
  softLimit: () => number | undefined;
  /** the entries of a directory (tests); `readdirSync` */
  readdir?: (path: string) => unknown[];
}

/** replaces the registry's default fd gauges; one not registered (not Linux) is not added */
export function replaceFdGauges(
  registry: Registry,
  { softLimit, readdir = readdirSync }: FdGaugesOptions,
): void {
  if (registry.getSingleMetric(OPEN_FDS)) {
    registry.removeSingleMetric(OPEN_FDS);
    new Gauge({
      name: OPEN_FDS,
      help: 'Number of open file descriptors (the soft limit when counting them fails for want of one: EMFILE).',
      registers: [registry],
      collect() {
        try {
          // minus the descriptor the listing itself used
          this.set(readdir('/proc/self/fd').length - 1);
        } catch (error) {
          this.set(ownResourceShortage(error) === 'EMFILE' ? (softLimit() ?? Number.NaN) : Number.NaN);
        }
      },
    });
  }
  // prom-client's, read at start, stays where the limit cannot be read now
  if (registry.getSingleMetric(MAX_FDS) && softLimit() !== undefined) {
    registry.removeSingleMetric(MAX_FDS);
    new Gauge({
      name: MAX_FDS,
      help: 'Maximum number of open file descriptors (the soft limit, read at each scrape).',
      registers: [registry],
      collect() {
        this.set(softLimit() ?? Number.NaN);
      },
    });
  }
}
