/**
 * The soft limit on open files of this process (`Max open files` in `/proc/self/limits`, Linux
 * only; undefined elsewhere), for the Node entries:
 * - at start, a warning when it is below MIN_OPEN_FILES (docs/operations.md "Limits");
 * - while running, `softOpenFiles()` names it in the out-of-descriptors warning and readiness
 *   answer (resilience/own-resources.ts). It is read again each time (an operator may change it
 *   on the running process: `prlimit --pid`; one pread of a few hundred bytes, asked only while
 *   short of descriptors) from a descriptor opened at the first read and kept: when the process
 *   is out of descriptors, a new one could not be opened.
 *
 * Why 1024: an outside check found the API instance failed to start with 130 (Node opens its
 * modules while etcd, Redis, RabbitMQ and the pools connect: `Cannot find package …`, `EMFILE`)
 * and started with 140, then ran with ~25 descriptors idle; each client connection (HAProxy keeps
 * some open per instance) and each pooled database connection (10 per node by default, 4 shard
 * nodes locally) takes one more. 1024, the usual default, leaves that start-up peak more than
 * seven times over and room for several hundred client connections.
 */
import { openSync, readSync } from 'node:fs';
import type { Logger } from '../observability/logger.js';

export const MIN_OPEN_FILES = 1024;

/** the soft `Max open files` of a `/proc/<pid>/limits` text; undefined when unlimited or absent */
export function parseSoftOpenFiles(limits: string): number | undefined {
  const line = limits.split('\n').find((l) => l.startsWith('Max open files'));
  const soft = line?.slice('Max open files'.length).trim().split(/\s+/)[0];
  if (soft === undefined || !/^\d+$/.test(soft)) return undefined;
  return Number(soft);
}

let last: number | undefined;
/** `/proc/self/limits`, opened once and read again from offset 0: no new descriptor is needed then */
let limitsFd: number | undefined;
const buffer = Buffer.alloc(4096);

/** this process's soft limit on open files (Linux), the last one read if it cannot be read now */
export function softOpenFiles(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    limitsFd ??= openSync('/proc/self/limits', 'r');
    const n = readSync(limitsFd, buffer, 0, buffer.length, 0);
    last = parseSoftOpenFiles(buffer.toString('utf8', 0, n));
  } catch {
    // no /proc: keep the last value
  }
  return last;
}

/** at start: one warning when the soft limit is below MIN_OPEN_FILES */
export function warnIfFewOpenFiles(logger: Logger, what: string): void {
  const soft = softOpenFiles();
  if (soft === undefined || soft >= MIN_OPEN_FILES) return;
  logger.warn(
    { softLimit: soft, minimum: MIN_OPEN_FILES },
    `the soft limit on open files (${soft}) is below the documented minimum ${MIN_OPEN_FILES} for the ${what}: it may fail to start or run out of descriptors under load (raise LimitNOFILE / ulimit -n, see docs/operations.md)`,
  );
}
