import { describe, expect, it } from 'vitest';
import { CacheEpochRetirer, nextEpoch } from './cache-epoch.js';

/** a write that stays open until `release()`; records the order of starts and ends */
function gatedWrite() {
  const log: string[] = [];
  const gates: Array<() => void> = [];
  let fail = false;
  const write = (value: number) => {
    log.push(`start ${log.filter((l) => l.startsWith('start')).length + 1}`);
    expect(Number.isSafeInteger(value)).toBe(true);
    return new Promise<void>((resolve, reject) => {
      gates.push(() => {
        log.push('end');
        if (fail) reject(new Error('etcd down'));
        else resolve();
      });
    });
  };
  return {
    log,
    write,
    release: () => gates.shift()?.(),
    failNext: () => {
      fail = true;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('CacheEpochRetirer', () => {
  it('answers a call made during a move only after a move that started after it', async () => {
    const w = gatedWrite();
    const retirer = new CacheEpochRetirer(w.write, () => {});
    const first = retirer.retire();
    let secondDone = false;
    const second = retirer.retire().then(() => {
      secondDone = true;
    });
    const third = retirer.retire(); // shares the second's move
    await tick();
    expect(w.log).toEqual(['start 1']);
    w.release();
    await first;
    await tick();
    expect(secondDone).toBe(false);
    expect(w.log).toEqual(['start 1', 'end', 'start 2']);
    w.release();
    await Promise.all([second, third]);
    expect(w.log).toEqual(['start 1', 'end', 'start 2', 'end']);
  });

  it('never rejects: a failed move goes to onError', async () => {
    const w = gatedWrite();
    const errors: unknown[] = [];
    const retirer = new CacheEpochRetirer(w.write, (e) => errors.push(e));
    w.failNext();
    const done = retirer.retire();
    await tick();
    w.release();
    await expect(done).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    // and the next call starts a fresh move
    const again = retirer.retire();
    await tick();
    expect(w.log.filter((l) => l.startsWith('start'))).toHaveLength(2);
    w.release();
    await again;
  });

  it('makes epochs that differ between calls in the same millisecond and stay safe integers', () => {
    const now = 1_900_000_000_000;
    const seen = new Set(Array.from({ length: 50 }, () => nextEpoch(now)));
    expect(seen.size).toBeGreaterThan(1);
    for (const e of seen) {
      expect(Number.isSafeInteger(e)).toBe(true);
      expect(Math.floor(e / 1000)).toBe(now);
    }
  });
});
