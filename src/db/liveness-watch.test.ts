import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { watchLiveness } from './liveness-watch.js';

describe('watchLiveness', () => {
  beforeEach(() => vi.useFakeTimers());
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
    await vi.advanceTimersByTimeAsync(950);
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
});
