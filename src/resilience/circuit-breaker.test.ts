import { describe, expect, it, vi } from 'vitest';
import type { BreakerSettings } from '../config/schema.js';
import {
  ABANDON_GRACE_MS,
  type BreakerCall,
  type BreakerTransition,
  CircuitBreaker,
} from './circuit-breaker.js';
import {
  type AbandonReport,
  BreakerOpenError,
  CallStoppedError,
  CallTimeoutError,
  DependencyError,
} from './errors.js';
import { STALL_MIN_MS } from './stall-watch.js';

function setup(initial: Partial<BreakerSettings> = {}, { loopIdle = false } = {}) {
  const settings: BreakerSettings = {
    failure_threshold: 2,
    reset_timeout_ms: 1000,
    half_open_max_calls: 2,
    call_timeout_ms: 200,
    ...initial,
  };
  let t = 0;
  /** ms the test says the process did not run during any call */
  let stalled = 0;
  /** the event loop's idle time so far (`loopIdle`) */
  let idle = 0;
  const transitions: BreakerTransition[] = [];
  const breaker = new CircuitBreaker({
    name: 'mysql-replica:shard-1:0',
    kind: 'mysql-replica',
    settings: () => settings,
    onTransition: (x) => transitions.push(x),
    now: () => t,
    monotonicNow: () => t,
    stalledMs: () => stalled,
    loopIdleMs: loopIdle ? () => idle : undefined,
  });
  return {
    breaker,
    settings,
    transitions,
    advance: (ms: number) => (t += ms),
    stall: (ms: number) => (stalled = ms),
    idleFor: (ms: number) => (idle += ms),
  };
}

const ok = () => Promise.resolve('ok');
const boom = () => Promise.reject(new Error('boom'));
/** a call that hangs until aborted, then stops as a write does, reporting `report` */
const stopsWith =
  (report: AbandonReport) =>
  ({ signal }: { signal: AbortSignal }) =>
    new Promise<string>((_, reject) =>
      signal.addEventListener('abort', () => reject(new CallStoppedError('db', report))),
    );

describe('CircuitBreaker', () => {
  it('times its open spell on the monotonic clock: a wall clock stepped back an hour keeps it open no longer; since is the wall time of each transition', async () => {
    // Date and performance.now faked apart: setSystemTime steps the wall clock only (NTP, date -s)
    vi.useFakeTimers({ toFake: ['Date', 'performance', 'setTimeout', 'clearTimeout'] });
    try {
      const breaker = new CircuitBreaker({
        name: 'redis',
        kind: 'redis',
        settings: () => ({
          failure_threshold: 1,
          reset_timeout_ms: 1000,
          half_open_max_calls: 1,
          call_timeout_ms: 200,
        }),
        stalledMs: () => 0,
        // the default clocks: performance.now for the spell, Date.now for `since`
      });
      await breaker.execute(boom).catch(() => {});
      const openedAt = Date.now();
      expect(breaker.view()).toMatchObject({ state: 'open', since: new Date(openedAt).toISOString() });
      vi.setSystemTime(openedAt - 3_600_000);
      await vi.advanceTimersByTimeAsync(999);
      expect(breaker.retryAfterMs()).toBe(1);
      await vi.advanceTimersByTimeAsync(1);
      // on Date.now it stayed open for the hour the clock went back
      expect(breaker.view()).toMatchObject({
        state: 'half_open',
        since: new Date(openedAt - 3_600_000 + 1000).toISOString(),
      });
      // a step ahead does not half-open it early either
      await breaker.execute(boom).catch(() => {});
      vi.setSystemTime(Date.now() + 3_600_000);
      expect(breaker.state).toBe('open');
      await vi.advanceTimersByTimeAsync(1000);
      expect(breaker.state).toBe('half_open');
    } finally {
      vi.useRealTimers();
    }
  });

  it('slowFails: a success after more than half of call_timeout_ms counts as a failure, its answer still given', async () => {
    const { breaker, advance, stall, transitions } = setup();
    /** answers after `ms` on the breaker's clock */
    const answersAfter = (ms: number) => () => {
      advance(ms);
      return Promise.resolve('late');
    };
    // without the option a slow answer is a success
    await expect(breaker.execute(answersAfter(150))).resolves.toBe('late');
    await expect(breaker.execute(answersAfter(150))).resolves.toBe('late');
    expect(breaker.state).toBe('closed');
    // with it: two in a row (failure_threshold 2) open the breaker; the callers got their answers
    await expect(breaker.execute(answersAfter(150), { slowFails: true })).resolves.toBe('late');
    expect(breaker.state).toBe('closed');
    await expect(breaker.execute(answersAfter(101), { slowFails: true })).resolves.toBe('late');
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(/answered after 101 ms, over half of call_timeout_ms/);
    // half-open, a slow probe opens it again; a quick one (at half, or slow only by this
    // process's own stall) counts as a success
    advance(1000);
    await expect(breaker.execute(answersAfter(150), { slowFails: true })).resolves.toBe('late');
    expect(breaker.state).toBe('open');
    advance(1000);
    await breaker.execute(answersAfter(100), { slowFails: true });
    stall(100);
    await breaker.execute(answersAfter(150), { slowFails: true });
    expect(breaker.state).toBe('closed');
  });

  it("slowFails with the loop's idle time: only the time the process waited idle for the answer counts", async () => {
    const { breaker, advance, idleFor, transitions } = setup({}, { loopIdle: true });
    /** answers after `ms`, of which the loop waited idle `idleMs` (busy with other work the rest) */
    const answersAfter = (ms: number, idleMs: number) => () => {
      advance(ms);
      idleFor(idleMs);
      return Promise.resolve('late');
    };
    // an instance busy with other requests: 160 ms to see each answer, 20 ms of it waiting
    for (let i = 0; i < 6; i++) await breaker.execute(answersAfter(160, 20), { slowFails: true });
    expect(breaker.state).toBe('closed');
    // a dependency that is slow itself: the loop waited (idle) most of the time
    await breaker.execute(answersAfter(160, 150), { slowFails: true });
    await breaker.execute(answersAfter(160, 150), { slowFails: true });
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(
      /answered after 150 ms of waiting for it, over half of call_timeout_ms/,
    );
  });

  it('slowFails with the loop busy: an answer after 0.9 of call_timeout_ms is slow all the same', async () => {
    const { breaker, advance, transitions } = setup({}, { loopIdle: true });
    const busyFor = (ms: number) => () => {
      advance(ms); // the loop never idle meanwhile
      return Promise.resolve('late');
    };
    await breaker.execute(busyFor(170), { slowFails: true });
    await breaker.execute(busyFor(170), { slowFails: true });
    expect(breaker.state).toBe('closed');
    await breaker.execute(busyFor(190), { slowFails: true });
    await breaker.execute(busyFor(190), { slowFails: true });
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(/answered after 190 ms, over 0.9 of call_timeout_ms/);
  });

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

  it('refuseIfOpen with trial options: refuses a write half-open after hung writes, as executeOrTrial would, and starts the trials', async () => {
    const { breaker, advance } = setup({ failure_threshold: 1, half_open_max_calls: 1, call_timeout_ms: 10 });
    const log: string[] = [];
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    const reads = {
      trial: async () => void log.push('read trial'),
      writeTrial: async () => {
        log.push('write trial');
        await gate;
      },
    };
    const write = { ...reads, writes: true };
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    expect(breaker.state).toBe('half_open');
    // before: admitted here, then its password hashed, then the write refused by executeOrTrial
    expect(() => breaker.refuseIfOpen(write)).toThrow(BreakerOpenError);
    await new Promise((r) => setTimeout(r, 1));
    expect(log).toEqual(['read trial', 'write trial']);
    // the read trial passed: reads are admitted, writes still refused while write trials probe
    expect(() => breaker.refuseIfOpen(reads)).not.toThrow();
    expect(() => breaker.refuseIfOpen(write)).toThrow(BreakerOpenError);
    release();
    await new Promise((r) => setTimeout(r, 1));
    expect(breaker.state).toBe('closed');
    expect(() => breaker.refuseIfOpen(write)).not.toThrow();
  });

  it('a success takes back one failure: failures as often as successes keep it closed', async () => {
    const { breaker } = setup({ failure_threshold: 2 });
    for (let i = 0; i < 20; i++) {
      await breaker.execute(boom).catch(() => {});
      await breaker.execute(ok);
    }
    expect(breaker.state).toBe('closed');
    expect(breaker.view().failures).toBe(0);
  });

  it('an answered DependencyError (a table the server lacks) is a success, not a failure; another is a failure', async () => {
    const { breaker } = setup({ failure_threshold: 2 });
    const isFailure = (e: unknown) => e instanceof DependencyError;
    const answered = () => Promise.reject(new DependencyError('db', 'ER_NO_SUCH_TABLE', { answered: true }));
    for (let i = 0; i < 5; i++)
      await expect(breaker.execute(answered, { isFailure })).rejects.toThrow('ER_NO_SUCH_TABLE');
    expect([breaker.state, breaker.view().failures]).toEqual(['closed', 0]);
    const down = () => Promise.reject(new DependencyError('db', 'ECONNREFUSED'));
    for (let i = 0; i < 2; i++) await breaker.execute(down, { isFailure }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('failures that outnumber successes open it, though never failure_threshold in a row', async () => {
    // a Redis paused in a loop (CLIENT PAUSE 900): three reads time out, the fourth slips through
    const { breaker, transitions } = setup({ failure_threshold: 5 });
    const seen: string[] = [];
    for (let cycle = 0; cycle < 3 && breaker.state === 'closed'; cycle++) {
      for (let i = 0; i < 3 && breaker.state === 'closed'; i++) {
        await breaker.execute(boom).catch(() => {});
        seen.push(`F${breaker.view().failures}`);
      }
      if (breaker.state !== 'closed') break;
      await breaker.execute(ok);
      seen.push(`S${breaker.view().failures}`);
    }
    // before, each success ended the count: it never passed 3 and the breaker stayed closed
    expect(seen).toEqual(['F1', 'F2', 'F3', 'S2', 'F3', 'F4', 'F5']);
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toBe('boom');
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

  it('connectionRestored: an open breaker turns half-open 1 s after it opened (call_timeout_ms if longer), not at reset_timeout_ms; closed or half-open, nothing changes', async () => {
    const { breaker, advance, transitions } = setup({ reset_timeout_ms: 5000 });
    breaker.connectionRestored('client ready');
    expect(breaker.state).toBe('closed');
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    advance(10);
    breaker.connectionRestored('client ready');
    // not at once: a Redis stalling in bursts answers a handshake between two stalls
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs()).toBe(990);
    advance(990);
    expect(breaker.state).toBe('half_open');
    expect(transitions.at(-1)).toMatchObject({ from: 'open', to: 'half_open', reason: 'client ready' });
    breaker.connectionRestored('client ready');
    expect(transitions).toHaveLength(2);
    // its probes decide as after the reset time: a failure opens it for a whole reset time again
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
    expect(breaker.retryAfterMs()).toBe(5000);
    advance(1000);
    expect(breaker.state).toBe('open'); // the restore of the spell before does not carry over
    breaker.connectionRestored('client ready');
    expect(breaker.state).toBe('half_open'); // open 1 s already
    await breaker.execute(ok);
    await breaker.execute(ok);
    expect(breaker.state).toBe('closed');
  });

  it('connectionRestored waits call_timeout_ms when longer than 1 s, and never past reset_timeout_ms', async () => {
    const slow = setup({ reset_timeout_ms: 5000, call_timeout_ms: 2000 });
    await slow.breaker.execute(boom).catch(() => {});
    await slow.breaker.execute(boom).catch(() => {});
    slow.breaker.connectionRestored('client ready');
    slow.advance(1999);
    expect(slow.breaker.state).toBe('open');
    slow.advance(1);
    expect(slow.breaker.state).toBe('half_open');
    const short = setup({ reset_timeout_ms: 400 });
    await short.breaker.execute(boom).catch(() => {});
    await short.breaker.execute(boom).catch(() => {});
    short.breaker.connectionRestored('client ready');
    expect(short.breaker.retryAfterMs()).toBe(400);
    short.advance(400);
    expect(short.breaker.state).toBe('half_open');
    expect(short.transitions.at(-1)?.reason).toBe('reset timeout elapsed');
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

  it('a call during which this process did not run (SIGSTOP, a VM pause) gets that time back, once', async () => {
    // fake timers: which of the deadline's timer and the answer fires first is the test's choice,
    // not the machine's load (a busy CI box once ran both in one late turn, the answer first)
    vi.useFakeTimers();
    try {
      const { breaker, stall } = setup({ call_timeout_ms: 20, failure_threshold: 1 });
      // the call's answer arrives during the stall: read after it, it is a success
      let answer: (v: string) => void = () => {};
      const answered = breaker.execute(() => new Promise<string>((r) => (answer = r)));
      stall(5_000); // at its deadline, the watch says the process did not run for 5 s of the call
      await vi.advanceTimersByTimeAsync(30); // the deadline fired; the call got min(5 s, 20 ms) more
      answer('ok');
      await expect(answered).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
      // a call that does not answer in the time given back is a timeout
      const twice = breaker.execute(() => new Promise<string>(() => {}));
      const timedOut = expect(twice).rejects.toBeInstanceOf(CallTimeoutError);
      await vi.advanceTimersByTimeAsync(45);
      await timedOut;
      expect(breaker.state).toBe('open');
      // a stall under STALL_MIN_MS (the event loop's usual lag): the usual timeout, 20 ms and one
      // turn; an answer 30 ms in comes too late (it would be in time had the deadline moved)
      const other = setup({ call_timeout_ms: 20, failure_threshold: 1 });
      other.stall(STALL_MIN_MS - 1);
      let late: (v: string) => void = () => {};
      const lateAnswer = other.breaker.execute(() => new Promise<string>((r) => (late = r)));
      const verdict = expect(lateAnswer).rejects.toBeInstanceOf(CallTimeoutError);
      await vi.advanceTimersByTimeAsync(30);
      late('late');
      await verdict;
      expect(other.breaker.state).toBe('open');
    } finally {
      vi.useRealTimers();
    }
  });

  it('a step of the wall clock is no stall: the call times out on time', async () => {
    let wall = 0;
    const breaker = new CircuitBreaker({
      name: 'mysql-master:shard-1',
      kind: 'mysql-master',
      settings: () => ({
        failure_threshold: 1,
        reset_timeout_ms: 1000,
        half_open_max_calls: 1,
        call_timeout_ms: 20,
      }),
      now: () => wall,
      // the default monotonic clock: performance.now()
    });
    // fake timeouts only (the monotonic clock and the stall watch stay real): the deadline and
    // the answer fire in the order of their times, not in one late turn of a busy machine
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      // answers 10 ms after its deadline: too late, unless the step were taken for a stall
      const late = breaker.execute(() => new Promise<string>((r) => setTimeout(() => r('late'), 30)));
      wall += 60_000; // NTP stepped the clock a minute ahead
      const verdict = expect(late).rejects.toBeInstanceOf(CallTimeoutError);
      await vi.advanceTimersByTimeAsync(30);
      await verdict;
      expect(breaker.state).toBe('open');
    } finally {
      vi.useRealTimers();
    }
  });

  it('an answer read in the event loop turn of the deadline is not abandoned', async () => {
    // fake timers: with real ones the answer's timer could fall due a millisecond after the
    // breaker's on a loaded box (a CI run failed so)
    vi.useFakeTimers();
    try {
      const { breaker } = setup({ call_timeout_ms: 20, failure_threshold: 1 });
      // the answer's timer is due in the same turn as the breaker's (both 20 ms, the breaker's first)
      const onTheDeadline = () => new Promise<string>((r) => setTimeout(() => r('ok'), 20));
      const answer = breaker.execute(onTheDeadline);
      await vi.advanceTimersByTimeAsync(30);
      await expect(answer).resolves.toBe('ok');
      expect(breaker.state).toBe('closed');
    } finally {
      vi.useRealTimers();
    }
  });

  it('after the abort, waits for the call to stop (a KILL on the server) before the caller hears of the timeout', async () => {
    const { breaker } = setup({ call_timeout_ms: 20, failure_threshold: 5 });
    const events: string[] = [];
    // stops 60 ms after the abort, failing as a lost connection would
    const stopsSlowly = ({ signal }: { signal: AbortSignal }) =>
      new Promise<string>((_, reject) => {
        signal.addEventListener('abort', () =>
          setTimeout(() => {
            events.push('stopped');
            reject(new Error('connection lost'));
          }, 60),
        );
      });
    // fake timeouts: the answer comes when the call stopped (20 + 60 ms of timer time, plus the
    // event loop turns in between, well under 100), not at the end of the grace
    // (20 + ABANDON_GRACE_MS), however late a busy machine runs the timers
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let error: unknown;
      const answered = breaker.execute(stopsSlowly).catch((e: unknown) => {
        error = e;
        events.push('answered');
      });
      expect(100).toBeLessThan(20 + ABANDON_GRACE_MS);
      await vi.advanceTimersByTimeAsync(100);
      expect(events).toEqual(['stopped', 'answered']);
      await answered;
      // the timeout is what the caller hears, not the error the call stopped with
      expect(error).toBeInstanceOf(CallTimeoutError);
      // a call that still succeeded while it stopped: its result, since its effect took place
      const lateSuccess = ({ signal }: { signal: AbortSignal }) =>
        new Promise<string>((resolve) =>
          signal.addEventListener('abort', () => setTimeout(() => resolve('done'), 10)),
        );
      const late = breaker.execute(lateSuccess);
      await vi.advanceTimersByTimeAsync(100);
      await expect(late).resolves.toBe('done');
    } finally {
      vi.useRealTimers();
    }
  });

  it('an aborted call that never stops is answered ABANDON_GRACE_MS after the timeout', async () => {
    const { breaker } = setup({ call_timeout_ms: 20 });
    const never = ({ signal }: { signal: AbortSignal }) => new Promise<string>(() => void signal);
    const t0 = performance.now();
    await expect(breaker.execute(never)).rejects.toBeInstanceOf(CallTimeoutError);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(20 + ABANDON_GRACE_MS - 5);
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

  it('a failure_threshold lowered to the failures counted opens a closed breaker at once, not at the next failure', async () => {
    const { breaker, settings, transitions } = setup({ failure_threshold: 5 });
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    settings.failure_threshold = 3;
    breaker.settingsChanged();
    expect(breaker.state).toBe('closed');
    settings.failure_threshold = 2;
    breaker.settingsChanged();
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toBe('failure_threshold lowered to 2: 2 failure(s) counted');
    // a raised one later changes nothing more
    settings.failure_threshold = 5;
    breaker.settingsChanged();
    expect(breaker.state).toBe('open');
  });

  it('a lowered failure_threshold opens a breaker only on failures at most max(reset_timeout_ms, call_timeout_ms) old', async () => {
    const failTwice = async () => {
      const made = setup({ failure_threshold: 5, reset_timeout_ms: 1000, call_timeout_ms: 1500 });
      await made.breaker.execute(boom).catch(() => {});
      await made.breaker.execute(boom).catch(() => {});
      return made;
    };
    // older than reset_timeout_ms, but a hung node fails a caller only once per call timeout
    const hung = await failTwice();
    hung.advance(1500);
    hung.settings.failure_threshold = 2;
    hung.breaker.settingsChanged();
    expect(hung.breaker.state).toBe('open');

    const idle = await failTwice();
    idle.advance(1501);
    idle.settings.failure_threshold = 2;
    idle.breaker.settingsChanged();
    expect(idle.breaker.state).toBe('closed');
    // the count is kept: the next failure opens it, as it would have before the change
    await idle.breaker.execute(boom).catch(() => {});
    expect(idle.breaker.state).toBe('open');
  });

  it('a lowered failure_threshold judges old hung writes by their own age, not by a recent read failure', async () => {
    const { breaker, settings, advance } = setup({
      failure_threshold: 5,
      reset_timeout_ms: 1000,
      call_timeout_ms: 10,
    });
    await breaker.execute(hang, { writes: true }).catch(() => {});
    await breaker.execute(hang, { writes: true }).catch(() => {});
    advance(5000);
    await breaker.execute(boom).catch(() => {});
    settings.failure_threshold = 2;
    breaker.settingsChanged();
    expect(breaker.state).toBe('closed');
    await breaker.execute(hang, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('does not count caller errors marked as non-failures', async () => {
    const { breaker } = setup({ failure_threshold: 1 });
    await breaker.execute(boom, { isFailure: () => false }).catch(() => {});
    expect(breaker.state).toBe('closed');
  });

  it('executeOrTrial counts a call in the state it admitted it in: the reset timeout running out meanwhile makes no caller the probe', async () => {
    // a CI run: a caller's write let through while open became half-open's probe and waited the
    // call timeout on a master under a global read lock, though background trials probe it
    let t = 0;
    /** each reading of the clock moves it by this much (the reset timeout runs out in between) */
    let step = 0;
    const breaker = new CircuitBreaker({
      name: 'mysql-master:shard-1',
      kind: 'mysql-master',
      settings: () => ({
        failure_threshold: 1,
        reset_timeout_ms: 1000,
        half_open_max_calls: 1,
        call_timeout_ms: 200,
      }),
      now: () => {
        const now = t;
        t += step;
        return now;
      },
      monotonicNow: () => t,
      stalledMs: () => 0,
    });
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
    t = 999.5; // half a millisecond before half-open: the next reading passes it
    step = 1;
    let called = 0;
    const caller = () => {
      called++;
      return ok();
    };
    const answer = await breaker.executeOrTrial(caller, { trial: async () => {} }).catch((e: unknown) => e);
    expect(answer).toBeInstanceOf(BreakerOpenError);
    expect(called).toBe(0);
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

  /** a write the node never answers: it times out (call_timeout_ms) */
  const hang = () => new Promise<string>(() => {});

  it('timed-out writes open it although reads succeed in between (a master that hangs only on writes)', async () => {
    const { breaker, transitions } = setup({ failure_threshold: 3, call_timeout_ms: 10 });
    const write = { writes: true };
    for (let i = 0; i < 3; i++) {
      expect(breaker.state).toBe('closed');
      await expect(breaker.execute(hang, write)).rejects.toBeInstanceOf(CallTimeoutError);
      if (i < 2) await expect(breaker.execute(ok)).resolves.toBe('ok');
    }
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(/^3 write\(s\) in a row timed out: /);
    expect(breaker.view().failures).toBe(3);
  });

  it('a timed-out write whose stop reports the dependency was not stuck (a row lock) counts as no failure, however many at once', async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    const rowLockWait = stopsWith({ mayHaveApplied: false, dependencyStuck: false });
    const first = await breaker.execute(rowLockWait, { writes: true }).catch((e: unknown) => e);
    // the caller hears of the timeout, with what the stop found: the write did not apply
    expect(first).toBeInstanceOf(CallTimeoutError);
    expect((first as CallTimeoutError).mayHaveApplied).toBe(false);
    expect((first as CallTimeoutError).ownWait).toBe('row-lock');
    // before: each counted as a failure, and 5 borrows of one locked book at once opened a
    // master breaker for every tenant of the shard (an outside check)
    const many = await Promise.all(
      Array.from({ length: 6 }, () =>
        breaker.execute(rowLockWait, { writes: true }).catch((e: unknown) => e),
      ),
    );
    expect(many.every((e) => e instanceof CallTimeoutError)).toBe(true);
    expect(breaker.state).toBe('closed');
    expect(breaker.view().failures).toBe(0);
    // nor do they excuse the failures of the node itself
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(rowLockWait, { writes: true }).catch(() => {});
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('a write whose stop reports only after the grace that it waited on a row lock is counted, then taken back while closed', async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    // the kill's report comes 100 ms after the grace (its own connection slow on a loaded box)
    const lateRowLock = ({ signal }: { signal: AbortSignal }) =>
      new Promise<string>((_, reject) =>
        signal.addEventListener('abort', () =>
          setTimeout(
            () => reject(new CallStoppedError('db', { mayHaveApplied: false, dependencyStuck: false })),
            ABANDON_GRACE_MS + 100,
          ),
        ),
      );
    for (let i = 0; i < 3; i++) {
      const error = await breaker.execute(lateRowLock, { writes: true }).catch((e: unknown) => e);
      // the caller is answered at the grace, unconfirmed
      expect((error as CallTimeoutError).mayHaveApplied).toBe(true);
      expect(breaker.view().failures).toBe(1);
      await new Promise((r) => setTimeout(r, 200));
      expect(breaker.view().failures, `write ${i}`).toBe(0);
    }
    expect(breaker.state).toBe('closed');
    // a stuck node's late report takes nothing back
    const lateStuck = ({ signal }: { signal: AbortSignal }) =>
      new Promise<string>((_, reject) =>
        signal.addEventListener('abort', () =>
          setTimeout(
            () => reject(new CallStoppedError('db', { mayHaveApplied: true, dependencyStuck: true })),
            ABANDON_GRACE_MS + 100,
          ),
        ),
      );
    await breaker.execute(lateStuck, { writes: true }).catch(() => {});
    await new Promise((r) => setTimeout(r, 200));
    await breaker.execute(lateStuck, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it("a late row-lock report takes back only its own write's count, not one counted after a success reset the run", async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    const lateReport =
      (report: { mayHaveApplied: boolean; dependencyStuck: boolean }, afterMs: number) =>
      ({ signal }: { signal: AbortSignal }) =>
        new Promise<string>((_, reject) =>
          signal.addEventListener('abort', () =>
            setTimeout(() => reject(new CallStoppedError('db', report)), ABANDON_GRACE_MS + afterMs),
          ),
        );
    // A: waited on a row lock, its report comes 150 ms after the grace
    const a = breaker
      .execute(lateReport({ mayHaveApplied: false, dependencyStuck: false }, 150), { writes: true })
      .catch(() => {});
    await new Promise((r) => setTimeout(r, ABANDON_GRACE_MS + 50));
    expect(breaker.view().failures).toBe(1);
    // a write that succeeds ends the run of hung writes; B hangs for real (the node is stuck)
    await breaker.execute(ok, { writes: true });
    expect(breaker.view().failures).toBe(0);
    const b = breaker.execute(hang, { writes: true }).catch(() => {});
    await b;
    expect(breaker.view().failures).toBe(1);
    await a;
    await new Promise((r) => setTimeout(r, 200));
    // before: A's report took B's count back
    expect(breaker.view().failures).toBe(1);
    await breaker.execute(hang, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('a timed-out write counts as no failure when a call committed a write after it was sent', async () => {
    const { breaker, advance } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    /** sent at once, then hangs until aborted; stops "stuck, may have applied" (its kill found it gone) */
    const sentThenStuck = (call: BreakerCall) => {
      call.sent();
      return stopsWith({ mayHaveApplied: true, dependencyStuck: true })(call);
    };
    /** answers at once; `commits`: a transaction that wrote */
    const answers = (commits: boolean) => (call: BreakerCall) => {
      if (commits) call.committed();
      return Promise.resolve('ok');
    };
    // a row lock released as these were stopped: they ran on to their COMMIT, as did a waiter
    // that was not stopped, which committed after they were sent
    const waits = Array.from({ length: 4 }, () =>
      breaker.execute(sentThenStuck, { writes: true }).catch((e: unknown) => e),
    );
    advance(5);
    await breaker.execute(answers(true), { writes: true });
    const errors = await Promise.all(waits);
    // the callers hear what the stop found
    expect(errors.every((e) => e instanceof CallTimeoutError && e.mayHaveApplied)).toBe(true);
    expect(breaker.state).toBe('closed');
    expect(breaker.view().failures).toBe(0);
    // so reported late too (after the grace): counted at the grace, then taken back
    const late = (call: BreakerCall) => {
      call.sent();
      return new Promise<string>((_, reject) =>
        call.signal.addEventListener('abort', () =>
          setTimeout(
            () => reject(new CallStoppedError('db', { mayHaveApplied: true, dependencyStuck: true })),
            ABANDON_GRACE_MS + 100,
          ),
        ),
      );
    };
    const lateOne = breaker.execute(late, { writes: true }).catch(() => {});
    advance(5);
    await new Promise((r) => setTimeout(r, ABANDON_GRACE_MS + 20));
    expect(breaker.view().failures).toBe(1);
    await breaker.execute(answers(true), { writes: true });
    await lateOne;
    await new Promise((r) => setTimeout(r, 150));
    expect(breaker.view().failures).toBe(0);
    // a write its stop saw waiting on the server itself is hung, whatever committed since
    const serverWide = (call: BreakerCall) => {
      call.sent();
      return stopsWith({ mayHaveApplied: false, dependencyStuck: true, serverWide: true })(call);
    };
    const blocked = breaker.execute(serverWide, { writes: true }).catch(() => {});
    advance(1);
    await breaker.execute(answers(true), { writes: true });
    await blocked;
    expect(breaker.view().failures).toBe(1);
    await breaker.execute(answers(true), { writes: true });
    expect(breaker.view().failures).toBe(0);
    // answers that commit no write prove nothing (a node behind a global read lock refuses,
    // rolls back and reads): with only those since they were sent, they are hung writes (a review)
    advance(1);
    const stuck = [1, 2].map(() => breaker.execute(sentThenStuck, { writes: true }).catch(() => {}));
    advance(1);
    await breaker.execute(answers(false), { writes: true });
    await breaker.execute(answers(false));
    await Promise.all(stuck);
    expect(breaker.state).toBe('open');
  });

  it('a call that waited for a free connection of a full pool and was never sent counts as no failure', async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    const queuedWrite = stopsWith({ mayHaveApplied: false, dependencyStuck: false, waitedFor: 'connection' });
    const busy = () => Promise.reject(new DependencyError('db', 'no free connection', { busy: true }));
    const errors = await Promise.all([
      ...Array.from({ length: 4 }, () =>
        breaker.execute(queuedWrite, { writes: true }).catch((e: unknown) => e),
      ),
      ...Array.from({ length: 4 }, () => breaker.execute(busy).catch((e: unknown) => e)),
    ]);
    expect((errors[0] as CallTimeoutError).ownWait).toBe('connection');
    expect((errors[0] as CallTimeoutError).mayHaveApplied).toBe(false);
    expect(breaker.state).toBe('closed');
    expect(breaker.view().failures).toBe(0);
    // a new connection the node did not give in time is the node's failure
    const connecting = stopsWith({ mayHaveApplied: false, dependencyStuck: true, waitedFor: 'connection' });
    await breaker.execute(connecting, { writes: true }).catch(() => {});
    await breaker.execute(connecting, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('a timed-out write whose stop could not be confirmed counts as a hung write', async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    // a stop that could not be confirmed (no answer within the grace) counts as a hung write
    const unconfirmed = ({ signal }: { signal: AbortSignal }) => new Promise<string>(() => void signal);
    await breaker.execute(ok);
    const error = await breaker.execute(unconfirmed, { writes: true }).catch((e: unknown) => e);
    expect((error as CallTimeoutError).mayHaveApplied).toBe(true);
    await breaker.execute(ok);
    await breaker.execute(unconfirmed, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('a write refused at once counts as any failure: a read in between resets it (the node is down, not stuck)', async () => {
    const { breaker } = setup({ failure_threshold: 2 });
    await breaker.execute(boom, { writes: true }).catch(() => {});
    await breaker.execute(ok);
    await breaker.execute(boom, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('closed');
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('open');
  });

  it('a successful write resets the count of failed reads too; a failed read does not add to hung writes', async () => {
    const { breaker } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    await breaker.execute(boom).catch(() => {});
    await breaker.execute(ok, { writes: true });
    await breaker.execute(boom).catch(() => {});
    expect(breaker.state).toBe('closed');
    await breaker.execute(hang, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('closed');
  });

  it('half-open after hung writes: one read trial first, then writes probe and reads pass without closing it', async () => {
    const { breaker, advance } = setup({ failure_threshold: 2, half_open_max_calls: 1, call_timeout_ms: 10 });
    let trials = 0;
    const options = { trial: async () => void trials++ };
    const write = { ...options, writes: true };
    await breaker.execute(hang, write).catch(() => {});
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    expect(breaker.state).toBe('half_open');
    // until a trial (a read) answered, callers are refused, as for a node that hangs on everything
    await expect(breaker.executeOrTrial(ok, write)).rejects.toBeInstanceOf(BreakerOpenError);
    await new Promise((r) => setTimeout(r, 10));
    // one trial, and it did not close the breaker: a read proves nothing about writes
    expect(trials).toBe(1);
    expect(breaker.state).toBe('half_open');
    await expect(breaker.executeOrTrial(ok, options)).resolves.toBe('ok');
    expect(breaker.state).toBe('half_open');
    // one write probes; a second write meanwhile is refused (half_open_max_calls 1), a read passes
    let release = () => {};
    const gate = new Promise<string>((r) => (release = () => r('written')));
    const probe = breaker.executeOrTrial(() => gate, write);
    await expect(breaker.executeOrTrial(ok, write)).rejects.toBeInstanceOf(BreakerOpenError);
    await expect(breaker.executeOrTrial(ok, options)).resolves.toBe('ok');
    release();
    await expect(probe).resolves.toBe('written');
    expect(breaker.state).toBe('closed');
    expect(trials).toBe(1);
  });

  it('half-open after hung writes: a failed read trial re-opens it, and the next spell is tried with reads alone', async () => {
    const { breaker, advance } = setup({ failure_threshold: 1, half_open_max_calls: 1, call_timeout_ms: 10 });
    await breaker.execute(hang, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
    advance(1000);
    await expect(breaker.executeOrTrial(ok, { writes: true, trial: boom })).rejects.toBeInstanceOf(
      BreakerOpenError,
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(breaker.state).toBe('open');
    advance(1000);
    await expect(breaker.executeOrTrial(ok, { writes: true, trial: ok })).rejects.toBeInstanceOf(
      BreakerOpenError,
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(breaker.state).toBe('closed');
  });

  it('half-open after hung writes: a write probe that hangs re-opens it, and so does a failed read', async () => {
    const { breaker, advance, transitions } = setup({ failure_threshold: 1, call_timeout_ms: 10 });
    const write = { writes: true, trial: ok };
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    await breaker.executeOrTrial(ok, write).catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    await expect(breaker.executeOrTrial(hang, write)).rejects.toBeInstanceOf(CallTimeoutError);
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(/^probe failed: /);
    advance(1000);
    expect(breaker.state).toBe('half_open');
    await breaker.executeOrTrial(ok, write).catch(() => {});
    await new Promise((r) => setTimeout(r, 10));
    await expect(breaker.executeOrTrial(boom, { trial: ok })).rejects.toThrow('boom');
    expect(breaker.state).toBe('open');
    // reopened by a read: the background trials (reads) probe again, and close it
    advance(1000);
    await expect(breaker.executeOrTrial(ok, { trial: ok })).rejects.toBeInstanceOf(BreakerOpenError);
    await new Promise((r) => setTimeout(r, 10));
    expect(breaker.state).toBe('closed');
  });

  it('half-open after hung writes with a write trial: a read trial, then write trials close it with no caller write', async () => {
    const { breaker, advance, transitions } = setup({
      failure_threshold: 2,
      half_open_max_calls: 2,
      call_timeout_ms: 10,
    });
    const log: string[] = [];
    const reads = {
      trial: async () => void log.push('read trial'),
      writeTrial: async () => void log.push('write trial'),
    };
    const write = { ...reads, writes: true };
    await breaker.execute(hang, write).catch(() => {});
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    expect(breaker.state).toBe('half_open');
    // a read caller starts the trials (an idle instance's position probe): no write ever comes
    await expect(breaker.executeOrTrial(ok, reads)).rejects.toBeInstanceOf(BreakerOpenError);
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(['read trial', 'write trial', 'write trial']);
    expect(breaker.state).toBe('closed');
    expect(transitions.at(-1)?.reason).toBe('2 successful probe(s)');
  });

  it('writes a read-only server refuses open it as hung writes do: read trials do not close it, a refused write trial re-opens it', async () => {
    const { breaker, advance, transitions } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    const readOnly = () =>
      Promise.reject(new DependencyError('db', 'db: the server is read-only', { writesOnly: true }));
    const log: string[] = [];
    const trials = {
      trial: async () => void log.push('read trial'),
      writeTrial: async () => {
        log.push('write trial');
        return readOnly();
      },
      isFailure: (e: unknown) => e instanceof DependencyError,
    };
    const write = { ...trials, writes: true };
    await breaker.executeOrTrial(readOnly, write).catch(() => {});
    // a read that answers in between excuses nothing (its position probes answer all along)
    await breaker.executeOrTrial(ok, trials);
    await breaker.executeOrTrial(readOnly, write).catch(() => {});
    expect(breaker.state).toBe('open');
    expect(transitions.at(-1)?.reason).toMatch(/^2 write\(s\) in a row were refused: /);
    advance(1000);
    // before: the read trial closed it (2 successful probes) while every write still failed. A
    // caller's read passes (writes alone failed) and starts the trials
    await expect(breaker.executeOrTrial(ok, trials)).resolves.toBe('ok');
    await new Promise((r) => setTimeout(r, 10));
    expect(log).toEqual(['read trial', 'write trial']);
    expect(breaker.state).toBe('open');
    expect(transitions.map((t) => t.to)).not.toContain('closed');
  });

  it('open after refused writes: reads pass, writes are refused, and a failed read makes it refuse reads too', async () => {
    const { breaker, transitions } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    const full = () =>
      Promise.reject(new DependencyError('db', 'db: the server is out of disk space', { writesOnly: true }));
    const write = { writes: true, isFailure: (e: unknown) => e instanceof DependencyError };
    const read = { isFailure: (e: unknown) => e instanceof DependencyError };
    await breaker.execute(full, write).catch(() => {});
    await breaker.execute(full, write).catch(() => {});
    expect(breaker.state).toBe('open');
    expect(breaker.view().writesOnly).toBe(true);
    // before: a read was refused as the writes are
    await expect(breaker.execute(ok, read)).resolves.toBe('ok');
    await expect(breaker.execute(ok, write)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(() => breaker.refuseIfOpen({ trial: ok, writes: true })).toThrow(BreakerOpenError);
    expect(() => breaker.refuseIfOpen({ trial: ok })).not.toThrow();
    expect(breaker.state).toBe('open'); // a read's success closes nothing
    // a read that fails: the node fails more than writes, its reads are refused for the spell
    await breaker
      .execute(() => Promise.reject(new DependencyError('db', 'db: connection refused')), read)
      .catch(() => {});
    expect(breaker.view().writesOnly).toBeUndefined();
    await expect(breaker.execute(ok, read)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(transitions.map((t) => t.to)).toEqual(['open']);
  });

  it('open after refused writes, then a failed read: half-open, read trials alone do not close it', async () => {
    const { breaker, advance } = setup({ failure_threshold: 2, half_open_max_calls: 2, call_timeout_ms: 10 });
    const full = () =>
      Promise.reject(new DependencyError('db', 'db: the server is read-only', { writesOnly: true }));
    const log: string[] = [];
    const trials = {
      trial: async () => void log.push('read trial'),
      writeTrial: async () => {
        log.push('write trial');
        return full();
      },
      isFailure: (e: unknown) => e instanceof DependencyError,
    };
    await breaker.executeOrTrial(full, { ...trials, writes: true }).catch(() => {});
    await breaker.executeOrTrial(full, { ...trials, writes: true }).catch(() => {});
    await breaker.executeOrTrial(hang, trials).catch(() => {}); // a read times out while open
    advance(1000);
    await breaker.executeOrTrial(ok, trials).catch(() => {});
    await new Promise((r) => setTimeout(r, 20));
    expect(log).toEqual(['read trial', 'write trial']); // before this fix: two read trials, closed
    expect(breaker.state).toBe('open');
  });

  it('open after timed-out writes: reads are refused, not let through to wait the call timeout', async () => {
    const { breaker, advance } = setup({ failure_threshold: 2, call_timeout_ms: 10 });
    await breaker.execute(hang, { writes: true }).catch(() => {});
    await breaker.execute(hang, { writes: true }).catch(() => {});
    expect(breaker.state).toBe('open');
    expect(breaker.view().writesOnly).toBeUndefined();
    let ran = 0;
    const reads = Array.from({ length: 20 }, () =>
      breaker.execute(async () => {
        ran++;
        return hang();
      }),
    );
    const outcomes = await Promise.allSettled(reads);
    expect(ran).toBe(0);
    expect(outcomes.every((o) => o.status === 'rejected' && o.reason instanceof BreakerOpenError)).toBe(true);
    advance(1000);
    // half-open: a read waits for the read trial as before
    await expect(breaker.executeOrTrial(ok, { trial: hang, writeTrial: ok })).rejects.toBeInstanceOf(
      BreakerOpenError,
    );
  });

  it("open after refused writes: a read whose error is not the dependency's keeps reads passing", async () => {
    const { breaker } = setup({ failure_threshold: 1, call_timeout_ms: 10 });
    const full = () =>
      Promise.reject(new DependencyError('db', 'db: the server is out of disk space', { writesOnly: true }));
    await breaker
      .execute(full, { writes: true, isFailure: (e) => e instanceof DependencyError })
      .catch(() => {});
    const read = { isFailure: (e: unknown) => e instanceof DependencyError };
    await breaker.execute(() => Promise.reject(new Error('ER_PARSE_ERROR')), read).catch(() => {});
    await expect(breaker.execute(ok, read)).resolves.toBe('ok');
  });

  it("half-open after hung writes with a write trial: reads pass, callers' writes are refused, a hung write trial re-opens it", async () => {
    const { breaker, advance, transitions } = setup({
      failure_threshold: 1,
      half_open_max_calls: 1,
      call_timeout_ms: 10,
    });
    let release = () => {};
    const gate = new Promise<void>((r) => (release = r));
    let writeTrials = 0;
    const reads = {
      trial: ok,
      writeTrial: () => {
        writeTrials++;
        return writeTrials === 1 ? gate : hang();
      },
    };
    const write = { ...reads, writes: true };
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    await expect(breaker.executeOrTrial(ok, write)).rejects.toBeInstanceOf(BreakerOpenError);
    await new Promise((r) => setTimeout(r, 1));
    // the first write trial is under way: a caller's read passes, a caller's write is refused
    expect(writeTrials).toBe(1);
    let called = false;
    const caller = async () => {
      called = true;
    };
    await expect(breaker.executeOrTrial(caller, write)).rejects.toBeInstanceOf(BreakerOpenError);
    expect(called).toBe(false);
    await expect(breaker.executeOrTrial(ok, reads)).resolves.toBe('ok');
    expect(breaker.state).toBe('half_open');
    release();
    await new Promise((r) => setTimeout(r, 1));
    expect(breaker.state).toBe('closed');
    // opened by hung writes again; this time the write trial hangs and re-opens it, still by writes
    await breaker.execute(hang, write).catch(() => {});
    advance(1000);
    await expect(breaker.executeOrTrial(ok, reads)).rejects.toBeInstanceOf(BreakerOpenError);
    // the hung write trial times out (its call timeout and one turn) and opens it again
    await vi.waitFor(() => expect(breaker.state).toBe('open'), { timeout: 2_000, interval: 5 });
    expect(transitions.at(-1)?.reason).toMatch(/^probe failed: /);
    advance(1000);
    // the next spell starts again with a read trial, and a caller's write is still refused
    await expect(breaker.executeOrTrial(ok, write)).rejects.toBeInstanceOf(BreakerOpenError);
  });
});
