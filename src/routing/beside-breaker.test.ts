import { describe, expect, it } from 'vitest';
import type { BreakerSettings } from '../config/schema.js';
import { CircuitBreaker } from '../resilience/circuit-breaker.js';
import { DependencyError } from '../resilience/errors.js';
import { BESIDE_EVERY_MS, BesideBreaker } from './beside-breaker.js';

const SETTINGS: BreakerSettings = {
  failure_threshold: 1,
  reset_timeout_ms: 15_000,
  half_open_max_calls: 1,
  call_timeout_ms: 2000,
};

/** a breaker on a clock the test moves, and a BesideBreaker over it with a `connect` it controls */
function setup() {
  const clock = { ms: 1_000_000 };
  const breaker = new CircuitBreaker({
    name: 'mysql-master:s1',
    kind: 'mysql-master',
    settings: () => SETTINGS,
    now: () => clock.ms,
    monotonicNow: () => clock.ms,
    stalledMs: () => 0,
  });
  const attempts: { withinMs: number; answer: () => void; fail: () => void }[] = [];
  const beside = new BesideBreaker(
    () => breaker,
    (withinMs) =>
      new Promise<void>((resolve, reject) => {
        attempts.push({ withinMs, answer: resolve, fail: () => reject(new Error('ECONNREFUSED')) });
      }),
    () => clock.ms,
  );
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
  return { clock, breaker, beside, attempts, open, settle };
}

describe('BesideBreaker', () => {
  it('tries nothing while the breaker is closed', () => {
    const { beside, attempts } = setup();
    beside.maybeTry(1500);
    expect(attempts).toEqual([]);
  });

  it('an answer beside the open breaker half-opens it after call_timeout_ms, not reset_timeout_ms', async () => {
    const { clock, breaker, beside, attempts, open, settle } = setup();
    await open();
    clock.ms += 1000;
    beside.maybeTry(1500);
    expect(attempts.map((a) => a.withinMs)).toEqual([1500]);
    attempts[0]!.answer();
    await settle();
    expect(breaker.state).toBe('open'); // open 1 s of at least call_timeout_ms (2 s)
    clock.ms += 1000;
    expect(breaker.state).toBe('half_open');
    expect(breaker.retryAfterMs()).toBe(0);
  });

  it('a failed attempt changes nothing; one in flight at a time, one per BESIDE_EVERY_MS', async () => {
    const { clock, breaker, beside, attempts, open, settle } = setup();
    await open();
    beside.maybeTry(1500);
    beside.maybeTry(1500); // in flight
    expect(attempts).toHaveLength(1);
    attempts[0]!.fail();
    await settle();
    beside.maybeTry(1500); // too soon
    expect(attempts).toHaveLength(1);
    clock.ms += BESIDE_EVERY_MS;
    beside.maybeTry(1500);
    expect(attempts).toHaveLength(2);
    clock.ms += 3000;
    expect(breaker.state).toBe('open'); // the failure shortened nothing: open until 15 s
    expect(breaker.retryAfterMs()).toBe(15_000 - 3000 - BESIDE_EVERY_MS);
  });

  it('tries nothing while the breaker is open on writes: its node answers connections all along', async () => {
    const { breaker, beside, attempts, open } = setup();
    await open(true);
    expect(breaker.openedOnWrites).toBe(true);
    beside.maybeTry(1500);
    expect(attempts).toEqual([]);
  });

  it('an answer that comes once the breaker left open does nothing', async () => {
    const { clock, breaker, beside, attempts, open, settle } = setup();
    await open();
    beside.maybeTry(1500);
    clock.ms += SETTINGS.reset_timeout_ms;
    expect(breaker.state).toBe('half_open');
    attempts[0]!.answer();
    await settle();
    expect(breaker.state).toBe('half_open');
  });

  it('a connect that throws at once counts as a failed attempt', async () => {
    const { clock, open, breaker, settle } = setup();
    await open();
    const beside = new BesideBreaker(
      () => breaker,
      () => {
        throw new Error('no connect');
      },
      () => clock.ms,
    );
    expect(() => beside.maybeTry(1500)).not.toThrow();
    await settle();
    clock.ms += BESIDE_EVERY_MS;
    expect(() => beside.maybeTry(1500)).not.toThrow();
    expect(breaker.state).toBe('open');
  });
});
