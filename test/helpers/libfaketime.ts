/**
 * libfaketime.so.1 of the machine's multiarch directory (/usr/lib/<triplet>/faketime/), for a
 * process whose wall clock a test sets (LD_PRELOAD with `FAKETIME_DONT_FAKE_MONOTONIC=1`: timers
 * and `performance.now()` keep real time). Debian's `faketime` package; `npm test` installs it
 * (stack/preflight.ts TEST_BINARIES) and .ci/run too. Throws when it is missing: a clock test
 * fails, it does not skip.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export function libfaketime(): string {
  const found = readdirSync('/usr/lib', { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => join('/usr/lib', d.name, 'faketime', 'libfaketime.so.1'))
    .find((path) => existsSync(path));
  if (!found)
    throw new Error('libfaketime.so.1 not found under /usr/lib/*/faketime/: apt-get install faketime');
  return found;
}
