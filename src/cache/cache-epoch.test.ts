import { describe, expect, it } from 'vitest';
import { CacheEpochRetirer, nextEpoch } from './cache-epoch.js';

/** a write that stays open until `release()`; records the order of starts and ends */
function gatedWrite() {
  const log: string[] = [];
  const gates: Array<() => void> = [];
  let failures = 0;
  const write = (value: number) => {
    log.push(`start ${log.filter((l) => l.startsWith('start')).length + 1}`);
    expect(Number.isSafeInteger(value)).toBe(true);
    return new Promise<void>((resolve, reject) => {
      gates.push(() => {
        log.push('end');
        if (failures > 0) {
          failures--;
          reject(new Error('etcd down'));
        } else resolve();
      });
    });
  };
  return {
    log,
    write,
    release: () => gates.shift()?.(),
    /** the next write released fails */
    failNext: () => {
      failures++;
    },
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('CacheEpochRetirer', () => {
  it('answers a call made during a move only after a move that started after it', async () => {
    const w = gatedWrite();
    const retirer = new CacheEpochRetirer(w.write, () => {}, { minIntervalMs: 0 });
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

  it('never rejects: a failed move goes to onError, and callers then do not wait for a while', async () => {
    const w = gatedWrite();
    const errors: unknown[] = [];
    const retirer = new CacheEpochRetirer(w.write, (e) => errors.push(e), {
      minIntervalMs: 0,
      quietMs: 60_000,
    });
    w.failNext();
    const done = retirer.retire();
    await tick();
    w.release();
    await expect(done).resolves.toBeUndefined();
    expect(errors).toHaveLength(1);
    // etcd failing: the next call resolves at once and a move is tried in the background
    let resolved = false;
    void retirer.retire().then(() => {
      resolved = true;
    });
    await tick();
    expect(resolved).toBe(true);
    expect(w.log.filter((l) => l.startsWith('start'))).toHaveLength(2);
    // that background move succeeds: callers wait for moves again
    w.release();
    await tick();
    let waited = true;
    void retirer.retire().then(() => {
      waited = false;
    });
    await tick();
    expect(waited).toBe(true);
    w.release();
  });

  it('gives up waiting on a move after its deadline', async () => {
    const errors: unknown[] = [];
    const retirer = new CacheEpochRetirer(
      () => new Promise<void>(() => {}),
      (e) => errors.push(e),
      {
        deadlineMs: 30,
      },
    );
    await retirer.retire();
    expect(String(errors[0])).toMatch(/not written within 30 ms/);
  });

  it('starts moves at least minIntervalMs apart', async () => {
    const starts: number[] = [];
    const retirer = new CacheEpochRetirer(
      async () => {
        starts.push(performance.now());
      },
      () => {},
      { minIntervalMs: 50 },
    );
    await retirer.retire();
    await retirer.retire();
    expect(starts).toHaveLength(2);
    expect(starts[1]! - starts[0]!).toBeGreaterThanOrEqual(45);
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
