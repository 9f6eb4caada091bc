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
});
