import { describe, expect, it } from 'vitest';
import type { BreakerSettings } from '../config/schema.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { DependencyError } from '../resilience/errors.js';
import {
  BESIDE_EVERY_MS,
  BESIDE_MAX_EVERY_MS,
  BesideBreaker,
  type BesideOutcome,
  besideBreakerOf,
} from './beside-breaker.js';

const SETTINGS: BreakerSettings = {
  failure_threshold: 1,
  reset_timeout_ms: 15_000,
  half_open_max_calls: 1,
  call_timeout_ms: 2000,
};

/** a breaker on a clock the test moves, and a BesideBreaker over it with a `connect` it controls */
function setup(settings: BreakerSettings = SETTINGS) {
  const clock = { ms: 1_000_000 };
  const breaker = new CircuitBreaker({
    name: 'mysql-master:s1',
    kind: 'mysql-master',
    settings: () => settings,
    now: () => clock.ms,
    monotonicNow: () => clock.ms,
    stalledMs: () => 0,
  });
  const attempts: {
    withinMs: number;
    answer: () => void;
    /** the path failed: refused at once, or silent for `afterMs` (timed out) */
    fail: (afterMs?: number) => void;
    /** the server answered with an error packet (too many connections) */
    serverError: () => void;
  }[] = [];
  const connect = (withinMs: number) =>
    new Promise<BesideOutcome>((resolve) => {
      attempts.push({
        withinMs,
        answer: () => resolve('answered'),
        fail: (afterMs = 0) => {
          clock.ms += afterMs;
          resolve(afterMs > 0 ? 'timed_out' : 'unreachable');
        },
        serverError: () => resolve('server_error'),
      });
    });
  const beside = new BesideBreaker(breaker, () => clock.ms);
  const tryNow = (withinMs = 1500) => beside.maybeTry(withinMs, connect);
  const open = async (writes = false) => {
    await breaker
      .execute(
        () =>
          Promise.reject(
            writes
              ? new DependencyError('mysql-master:s1', 'read-only', { writesOnly: true })
              : new DependencyError('mysql-master:s1', 'ECONNREFUSED'),
          ),
        { writes },
      )
      .catch(() => {});
    expect(breaker.state).toBe('open');
  };
  const settle = () => new Promise((r) => setTimeout(r, 0));
  /** one attempt that fails at once, then the next one allowed */
  const failOnce = async () => {
    tryNow();
    attempts.at(-1)!.fail();
    await settle();
    clock.ms += BESIDE_EVERY_MS;
  };
  return { clock, breaker, beside, attempts, tryNow, open, settle, failOnce };
}

describe('BesideBreaker', () => {
  it('tries nothing while the breaker is closed', () => {
    const { tryNow, attempts } = setup();
    tryNow();
    expect(attempts).toEqual([]);
  });

  it('an answer after a failed attempt half-opens it after call_timeout_ms, not reset_timeout_ms', async () => {
    const { clock, breaker, attempts, tryNow, open, settle, failOnce } = setup();
    await open();
    await failOnce();
    tryNow();
    expect(attempts.map((a) => a.withinMs)).toEqual([1500, 1500]);
    attempts[1]!.answer();
    await settle();
    expect(breaker.state).toBe('open'); // open 0.9 s of at least call_timeout_ms (2 s)
    clock.ms += 1100;
    expect(breaker.state).toBe('half_open');
    expect(breaker.retryAfterMs()).toBe(0);
  });

  it('a node whose connections answer all along (a read lock, read_only) keeps its reset time', async () => {
    for (const writes of [false, true]) {
      const { clock, breaker, attempts, tryNow, open, settle } = setup();
      await open(writes);
      for (let i = 0; i < 5; i++) {
        tryNow();
        attempts.at(-1)!.answer();
        await settle();
        clock.ms += BESIDE_EVERY_MS;
      }
      expect(attempts).toHaveLength(5);
      expect(breaker.state).toBe('open');
      expect(breaker.retryAfterMs()).toBe(15_000 - 5 * BESIDE_EVERY_MS);
    }
  });

  it('a breaker opened on writes is shortened too once a connection failed, then answered (a blackholed path)', async () => {
    const { clock, breaker, attempts, tryNow, open, settle } = setup();
    await open(true);
    tryNow();
    attempts[0]!.fail(1500); // ran out its time
    await settle();
    clock.ms += 2 * BESIDE_EVERY_MS;
    tryNow();
    attempts[1]!.answer();
    await settle();
    clock.ms += 2000;
    expect(breaker.state).toBe('half_open');
  });

  it('a failed attempt changes nothing; one in flight at a time, one per BESIDE_EVERY_MS after refusals', async () => {
    const { clock, breaker, attempts, tryNow, open, settle } = setup();
    await open();
    tryNow();
    tryNow(); // in flight
    expect(attempts).toHaveLength(1);
    attempts[0]!.fail();
    await settle();
    tryNow(); // too soon
    expect(attempts).toHaveLength(1);
    clock.ms += BESIDE_EVERY_MS;
    tryNow();
    expect(attempts).toHaveLength(2);
    clock.ms += 3000;
    expect(breaker.state).toBe('open'); // the failure shortened nothing: open until 15 s
    expect(breaker.retryAfterMs()).toBe(15_000 - 3000 - BESIDE_EVERY_MS);
  });

  it('attempts that run out their time are spaced twice as far each time, up to BESIDE_MAX_EVERY_MS; an answer resets it', async () => {
    // a reset time longer than the series, so the breaker stays open through it
    const { clock, breaker, attempts, tryNow, open, settle } = setup({
      ...SETTINGS,
      reset_timeout_ms: 120_000,
    });
    await open();
    const gaps: number[] = [];
    let last = clock.ms;
    for (let i = 0; i < 7; i++) {
      // step 100 ms at a time until an attempt is made
      for (let steps = 0; attempts.length === i; steps++) {
        if (steps > 1000) throw new Error(`no attempt ${i}`);
        clock.ms += 100;
        tryNow();
      }
      gaps.push(clock.ms - last);
      last = clock.ms;
      attempts[i]!.fail(1500);
      await settle();
    }
    // after the first: 2×, 4×, 8× the base (less the 1.5 s each attempt took), then the cap
    expect(gaps.slice(1)).toEqual([1800, 3600, 7200, 8000, 8000, 8000].map((g) => Math.max(g, 1500)));
    expect(Math.max(...gaps)).toBe(BESIDE_MAX_EVERY_MS);
    for (let steps = 0; attempts.length === 7; steps++) {
      if (steps > 1000) throw new Error('no attempt 7');
      clock.ms += 100;
      tryNow();
    }
    attempts[7]!.answer();
    await settle();
    expect(breaker.state).toBe('half_open'); // failed, then answered: restored (open long enough)
    await open(); // its trial fails: open again
    clock.ms += BESIDE_EVERY_MS;
    tryNow();
    expect(attempts).toHaveLength(9); // the spacing is back to BESIDE_EVERY_MS
  });

  it('an answer that comes once the breaker left open does nothing', async () => {
    const { clock, breaker, attempts, tryNow, open, settle, failOnce } = setup();
    await open();
    await failOnce();
    tryNow();
    clock.ms += SETTINGS.reset_timeout_ms;
    expect(breaker.state).toBe('half_open');
    attempts[1]!.answer();
    await settle();
    expect(breaker.state).toBe('half_open');
  });

  it('a connect that throws at once counts as a failed attempt', async () => {
    const { clock, open, breaker, settle } = setup();
    await open();
    const beside = new BesideBreaker(breaker, () => clock.ms);
    const throwing = () => {
      throw new Error('no connect');
    };
    expect(() => beside.maybeTry(1500, throwing)).not.toThrow();
    await settle();
    clock.ms += BESIDE_EVERY_MS;
    expect(() => beside.maybeTry(1500, throwing)).not.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('an error packet of the server is no failure of the path: an answer after it shortens nothing', async () => {
    const { clock, breaker, attempts, tryNow, open, settle } = setup();
    await open();
    for (let i = 0; i < 4; i++) {
      tryNow();
      if (i % 2 === 0) attempts.at(-1)!.serverError();
      else attempts.at(-1)!.answer();
      await settle();
      clock.ms += BESIDE_EVERY_MS;
    }
    expect(attempts).toHaveLength(4);
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs()).toBe(15_000 - 4 * BESIDE_EVERY_MS);
  });

  it('one failure buys one shortening: an answer clears it, whatever the state it finds', async () => {
    const { clock, breaker, attempts, tryNow, open, settle, failOnce } = setup();
    await open();
    await failOnce();
    tryNow();
    attempts.at(-1)!.answer();
    await settle();
    clock.ms += 2000;
    expect(breaker.state).toBe('half_open');
    await open(); // its trial failed
    clock.ms += BESIDE_EVERY_MS;
    tryNow();
    attempts.at(-1)!.answer(); // no failure since the last answer
    await settle();
    clock.ms += 2000;
    expect(breaker.state).toBe('open');
  });

  it('an answer that comes while half-open clears the failure: the next spell is not shortened by it', async () => {
    const { clock, breaker, attempts, tryNow, open, settle, failOnce } = setup();
    await open();
    await failOnce();
    tryNow(); // in flight when the breaker half-opens
    clock.ms += SETTINGS.reset_timeout_ms;
    expect(breaker.state).toBe('half_open');
    attempts.at(-1)!.answer();
    await settle();
    await open();
    clock.ms += BESIDE_EVERY_MS;
    tryNow();
    attempts.at(-1)!.answer();
    await settle();
    clock.ms += 2000;
    expect(breaker.state).toBe('open');
  });

  it('no second attempt while one is in flight, however long it runs', () => {
    const { clock, attempts, tryNow, open } = setup({ ...SETTINGS, reset_timeout_ms: 120_000 });
    return open().then(() => {
      tryNow();
      clock.ms += 10_000;
      tryNow();
      expect(attempts).toHaveLength(1);
    });
  });

  it('a refusal after timed-out attempts brings the spacing back to BESIDE_EVERY_MS', async () => {
    const { clock, attempts, tryNow, open, settle } = setup({ ...SETTINGS, reset_timeout_ms: 120_000 });
    await open();
    tryNow();
    attempts[0]!.fail(1500);
    await settle();
    clock.ms += 2 * BESIDE_EVERY_MS;
    tryNow();
    attempts[1]!.fail(1500); // spacing 4 × base now
    await settle();
    clock.ms += 4 * BESIDE_EVERY_MS;
    tryNow();
    attempts[2]!.fail(); // refused at once
    await settle();
    clock.ms += BESIDE_EVERY_MS;
    tryNow();
    expect(attempts).toHaveLength(4);
  });

  it('a socket this process could not open changes neither the spacing nor the failure seen', async () => {
    const { clock, breaker, open, settle } = setup({
      ...SETTINGS,
      reset_timeout_ms: 120_000,
    });
    await open();
    const beside = new BesideBreaker(breaker, () => clock.ms);
    const local = () => Promise.resolve<BesideOutcome>('local');
    const timedOut = () => {
      clock.ms += 1500;
      return Promise.resolve<BesideOutcome>('timed_out');
    };
    beside.maybeTry(1500, timedOut); // spacing 2 × base
    await settle();
    clock.ms += 2 * BESIDE_EVERY_MS;
    beside.maybeTry(1500, local);
    await settle();
    clock.ms += BESIDE_EVERY_MS; // base spacing: not enough if the local outcome kept 2 × base
    let tried = false;
    beside.maybeTry(1500, () => {
      tried = true;
      return Promise.resolve<BesideOutcome>('answered');
    });
    expect(tried).toBe(false);
    clock.ms += BESIDE_EVERY_MS;
    beside.maybeTry(1500, () => Promise.resolve<BesideOutcome>('answered'));
    await settle();
    // the failure seen before the local outcome still counts: restored
    clock.ms += 2000;
    expect(breaker.state).toBe('half_open');
  });

  it('one state per breaker, whatever number of wraps ask for it', () => {
    const { breaker } = setup();
    expect(besideBreakerOf(breaker)).toBe(besideBreakerOf(breaker));
  });
});
