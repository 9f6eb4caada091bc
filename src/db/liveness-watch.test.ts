import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchLiveness } from './liveness-watch.js';

describe('watchLiveness', () => {
  beforeEach(() =>
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval', 'setTimeout', 'performance'] }),
  );
  afterEach(() => vi.useRealTimers());

  it('calls onSilent once when no ping has been answered for silentMs', async () => {
    const onSilent = vi.fn();
    let pings = 0;
    watchLiveness(
      () => {
        pings++;
        return new Promise(() => {}); // a frozen server: never answered
      },
      onSilent,
      { everyMs: 100, silentMs: 1000 },
    );
    // the ping goes out at the first tick (100 ms) and has waited 950 ms at 1,050
    await vi.advanceTimersByTimeAsync(1050);
    expect(onSilent).not.toHaveBeenCalled();
    // one ping in flight at a time: a frozen server does not pile them up
    expect(pings).toBe(1);
    await vi.advanceTimersByTimeAsync(100);
    expect(onSilent).toHaveBeenCalledTimes(1);
    expect(onSilent).toHaveBeenCalledWith(1000);
    await vi.advanceTimersByTimeAsync(5000);
    expect(onSilent).toHaveBeenCalledTimes(1);
  });

  it('does not call onSilent while pings are answered, however long the watch runs', async () => {
    const onSilent = vi.fn();
    const stop = watchLiveness(() => Promise.resolve(), onSilent, { everyMs: 100, silentMs: 300 });
    await vi.advanceTimersByTimeAsync(60_000);
    expect(onSilent).not.toHaveBeenCalled();
    stop();
  });

  it('counts silence from the last answer: a server that stops answering mid-way is caught', async () => {
    const onSilent = vi.fn();
    let frozen = false;
    watchLiveness(() => (frozen ? new Promise(() => {}) : Promise.resolve()), onSilent, {
      everyMs: 100,
      silentMs: 1000,
    });
    await vi.advanceTimersByTimeAsync(5000);
    frozen = true;
    await vi.advanceTimersByTimeAsync(900);
    expect(onSilent).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(300);
    expect(onSilent).toHaveBeenCalledTimes(1);
  });

  it('stops without calling onSilent when a ping fails outright (connection closed, not frozen)', async () => {
    const onSilent = vi.fn();
    let pings = 0;
    watchLiveness(
      () => {
        pings++;
        return Promise.reject(new Error('Connection lost'));
      },
      onSilent,
      { everyMs: 100, silentMs: 300 },
    );
    await vi.advanceTimersByTimeAsync(5000);
    expect(onSilent).not.toHaveBeenCalled();
    expect(pings).toBe(1);
  });

  it('stop() ends the watch', async () => {
    const onSilent = vi.fn();
    const ping = vi.fn(() => new Promise(() => {}));
    const stop = watchLiveness(ping, onSilent, { everyMs: 100, silentMs: 300 });
    stop();
    await vi.advanceTimersByTimeAsync(5000);
    expect(ping).not.toHaveBeenCalled();
    expect(onSilent).not.toHaveBeenCalled();
  });

  it('does not take a stall of its own process for silence: a late tick adds at most two intervals', async () => {
    const onSilent = vi.fn();
    let t = 0;
    let answer: (() => void) | undefined;
    watchLiveness(
      () =>
        new Promise<void>((resolve) => {
          answer = resolve;
        }),
      onSilent,
      { everyMs: 100, silentMs: 1000, now: () => t },
    );
    t += 100;
    await vi.advanceTimersByTimeAsync(100); // the first ping goes out
    expect(answer).toBeDefined();
    // the process stalls for 5 s with the ping in flight; its answer is waiting when it resumes
    t += 5000;
    await vi.advanceTimersByTimeAsync(100);
    // before: silent at once (5 s > 1 s); now the late tick counted 200 ms
    expect(onSilent).not.toHaveBeenCalled();
    answer!();
    for (let i = 0; i < 50; i++) {
      t += 100;
      await vi.advanceTimersByTimeAsync(100);
      answer!();
    }
    expect(onSilent).not.toHaveBeenCalled();
  });
});
