/**
 * One `up` or `down` at a time per state directory (`.stack/lock`, holding the holder's pid).
 * Two concurrent `up`s would otherwise both start etcd and the loser would overwrite a live pid
 * file with a dead one. A lock whose holder is gone (a Ctrl-C'd `up`) is taken over. Waiting
 * longer than `timeoutMs` fails with a line naming the holder. `withLockSync` is the same for a
 * short synchronous `fn`.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { isAlive, sleep } from './process-manager.js';

function tryAcquire(file: string): boolean {
  try {
    const fd = openSync(file, 'wx');
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    return false;
  }
}

function holder(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** whether `file` is held by a live process other than this one; a lock left over is removed */
function heldByAnother(file: string): number | undefined {
  const pid = holder(file);
  if (pid === process.pid) throw new Error(`${file} is already held by this process`);
  if (pid === undefined || !isAlive(pid)) {
    rmSync(file, { force: true });
    return undefined;
  }
  return pid;
}

export async function withLock<T>(
  file: string,
  fn: () => Promise<T>,
  { timeoutMs = 180_000, log = (_: string) => {} }: { timeoutMs?: number; log?: (s: string) => void } = {},
): Promise<T> {
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  let announced = false;
  while (!tryAcquire(file)) {
    const pid = heldByAnother(file);
    if (pid === undefined) continue;
    if (Date.now() > deadline) throw new Error(`another stack command (pid ${pid}) holds ${file}`);
    if (!announced) {
      log(`waiting for another stack command (pid ${pid}) to finish`);
      announced = true;
    }
    await sleep(200);
  }
  try {
    return await fn();
  } finally {
    if (holder(file) === process.pid) rmSync(file, { force: true });
  }
}

/**
 * `withLock` for a short synchronous `fn` (stack-env.ts writing `.stack/secrets.env`, read by
 * synchronous callers): the wait blocks the thread, 20 ms at a time, up to `timeoutMs`.
 */
export function withLockSync<T>(file: string, fn: () => T, { timeoutMs = 20_000 } = {}): T {
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  while (!tryAcquire(file)) {
    const pid = heldByAnother(file);
    if (pid === undefined) continue;
    if (Date.now() > deadline) throw new Error(`another process (pid ${pid}) holds ${file}`);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  try {
    return fn();
  } finally {
    if (holder(file) === process.pid) rmSync(file, { force: true });
  }
}
