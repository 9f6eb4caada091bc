import { describe, expect, it } from 'vitest';
import type { BreakerSettings } from '../config/schema.js';
import { type BreakerTransition, CircuitBreaker } from './circuit-breaker.js';
import { BreakerOpenError, CallTimeoutError } from './errors.js';

function setup(initial: Partial<BreakerSettings> = {}) {
  const settings: BreakerSettings = {
    failure_threshold: 2,
    reset_timeout_ms: 1000,
    half_open_max_calls: 2,
    call_timeout_ms: 200,
    ...initial,
  };
  let t = 0;
  const transitions: BreakerTransition[] = [];
  const breaker = new CircuitBreaker({
    name: 'mysql-replica:shard-1:0',
    kind: 'mysql-replica',
    settings: () => settings,
    onTransition: (x) => transitions.push(x),
    now: () => t,
  });
  return { breaker, settings, transitions, advance: (ms: number) => (t += ms) };
}

const ok = () => Promise.resolve('ok');
const boom = () => Promise.reject(new Error('boom'));

describe('CircuitBreaker', () => {
  it('opens after failure_threshold consecutive failures and refuses calls with the time left', async () => {
    const { breaker, advance } = setup();
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(boom)).rejects.toThrow('boom');
    expect(breaker.state).toBe('open');
    advance(300);
    const refused = await breaker.execute(ok).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(BreakerOpenError);
    expect((refused as BreakerOpenError).retryAfterSeconds).toBe(1);
    expect(breaker.retryAfterMs()).toBe(700);
  });

  it('refuseIfOpen throws what execute would, without calling, and passes when a call would be tried', async () => {
    const { breaker, advance } = setup();
    expect(() => breaker.refuseIfOpen()).not.toThrow();
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    expect(() => breaker.refuseIfOpen()).toThrow(BreakerOpenError);
    advance(1000);
    expect(breaker.state).toBe('half_open');
    expect(() => breaker.refuseIfOpen()).not.toThrow();
  });

  it('a success resets the consecutive failure count', async () => {
    const { breaker } = setup({ failure_threshold: 2 });
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(ok);
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('closed');
  });

  it('turns half-open after reset_timeout_ms and closes after half_open_max_calls successes', async () => {
    const { breaker, advance, transitions } = setup();
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(1000);
    expect(breaker.state).toBe('half_open');
    await breaker.execute(ok);
    expect(breaker.state).toBe('half_open');
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
    expect(transitions.map((x) => `${x.from}>${x.to}`)).toEqual([
      'closed>open',
      'open>half_open',
      'half_open>closed',
    ]);
  });

  it('limits concurrent half-open probes to half_open_max_calls', async () => {
    const { breaker, advance } = setup({ half_open_max_calls: 1 });
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(1000);
    let release!: () => void;
    const slow = breaker.execute(() => new Promise<string>((r) => (release = () => r('slow'))));
    await expect(breaker.execute(ok)).rejects.toBeInstanceOf(BreakerOpenError);
    release();
    await expect(slow).resolves.toBe('slow');
    expect(breaker.state).toBe('closed');
  });

  it('a failed probe re-opens it', async () => {
    const { breaker, advance } = setup();
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(1000);
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('abandons a call slower than call_timeout_ms and counts it as a failure', async () => {
    const { breaker } = setup({ call_timeout_ms: 20, failure_threshold: 1 });
    let aborted = false;
    const never = ({ signal }: { signal: AbortSignal }) =>
      new Promise<string>(() => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
      });
    await expect(breaker.execute(never)).rejects.toBeInstanceOf(CallTimeoutError);
    expect(aborted).toBe(true);
    expect(breaker.state).toBe('open');
  });

  it('applies a settings change at once without resetting the state', async () => {
    const { breaker, settings, advance } = setup({ failure_threshold: 5 });
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('closed');
    settings.failure_threshold = 3;
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
    advance(1000);
    expect(breaker.state).toBe('half_open');
    const since = breaker.view().since;
    settings.call_timeout_ms = 999;
    breaker.settingsChanged();
    expect(breaker.state).toBe('half_open');
    expect(breaker.view()).toMatchObject({ state: 'half_open', since, settings: { call_timeout_ms: 999 } });
  });

  it('does not count caller errors marked as non-failures', async () => {
    const { breaker } = setup({ failure_threshold: 1 });
    await breaker.execute(boom, { isFailure: () => false }).catch(() => {});
    expect(breaker.state).toBe('closed');
  });

  it('half-open, executeOrTrial refuses callers at once and runs one background trial loop for all of them', async () => {
    const { breaker, advance } = setup();
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(1000);
    expect(breaker.state).toBe('half_open');
    const trials = { a: 0, b: 0 };
    const closed = { a: 0, b: 0 };
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const trialA = async () => {
      trials.a++;
      await gate;
    };
    const onA = () => closed.a++;
    const onB = () => closed.b++;
    let called = 0;
    const caller = () => {
      called++;
      return ok();
    };
    const first = breaker.executeOrTrial(caller, { trial: trialA, onClosedByTrials: onA });
    const second = breaker.executeOrTrial(caller, {
      trial: async () => void trials.b++,
      onClosedByTrials: onB,
    });
    await expect(first).rejects.toBeInstanceOf(BreakerOpenError);
    await expect(second).rejects.toBeInstanceOf(BreakerOpenError);
    expect(called).toBe(0);
    release();
    await new Promise((r) => setTimeout(r, 10));
    expect(breaker.state).toBe('closed');
    // half_open_max_calls (2) trials of the loop the first caller started; none of the second's
    expect(trials).toEqual({ a: 2, b: 0 });
    expect(closed).toEqual({ a: 1, b: 1 });
    await expect(breaker.executeOrTrial(caller, { trial: trialA, onClosedByTrials: onA })).resolves.toBe(
      'ok',
    );
    expect(called).toBe(1);
    expect(closed).toEqual({ a: 1, b: 1 });
  });

  it('a failed trial opens the breaker again and calls no close callback', async () => {
    const { breaker, advance } = setup();
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(1000);
    let closedCalls = 0;
    await breaker.executeOrTrial(ok, { trial: boom, onClosedByTrials: () => closedCalls++ }).catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    expect(breaker.state).toBe('open');
    expect(closedCalls).toBe(0);
  });
});
