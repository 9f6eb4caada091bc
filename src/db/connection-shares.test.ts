import { describe, expect, it } from 'vitest';
import { ConnectionShares, ShareWaitEnded } from './connection-shares.js';

/** a timer that fires only when the test says so */
function manualTimers() {
  const due: (() => void)[] = [];
  return {
    wait: (onTimeout: () => void) => {
      let live = true;
      due.push(() => live && onTimeout());
      return () => {
        live = false;
      };
    },
    fireAll: () => {
      for (const f of due.splice(0)) f();
    },
  };
}

describe('ConnectionShares', () => {
  it("lets a tenant hold its share at once, then waits for one of its own, never another tenant's", async () => {
    const shares = new ConnectionShares(2);
    const timers = manualTimers();
    const a1 = await shares.take('a', timers.wait, 1000);
    const a2 = await shares.take('a', timers.wait, 1000);
    expect(shares.heldBy('a')).toBe(shares.max);
    let a3: (() => void) | undefined;
    const waiting = shares.take('a', timers.wait, 1000).then((r) => {
      a3 = r;
    });
    // another tenant is not held up by a's
    const b1 = await shares.take('b', timers.wait, 1000);
    b1();
    await Promise.resolve();
    expect(a3).toBeUndefined();
    a1();
    await waiting;
    expect(a3).toBeDefined();
    expect(shares.heldBy('a')).toBe(2);
    // given back once only, however often called
    a1();
    expect(shares.heldBy('a')).toBe(2);
    a2();
    a3!();
    expect(shares.heldBy('a')).toBe(0);
    expect(shares.heldBy('b')).toBe(0);
  });

  it('serves waiters first come first served, a newcomer queuing behind them', async () => {
    const shares = new ConnectionShares(1);
    const timers = manualTimers();
    const first = await shares.take('a', timers.wait, 1000);
    const order: string[] = [];
    const w1 = shares.take('a', timers.wait, 1000).then((r) => {
      order.push('w1');
      return r;
    });
    const w2 = shares.take('a', timers.wait, 1000).then((r) => {
      order.push('w2');
      return r;
    });
    first();
    (await w1)();
    (await w2)();
    expect(order).toEqual(['w1', 'w2']);
    expect(shares.heldBy('a')).toBe(0);
  });

  it('ends a wait at its timeout or its abort, leaving the queue and the count as they were', async () => {
    const shares = new ConnectionShares(1);
    const timers = manualTimers();
    const held = await shares.take('a', timers.wait, 1000);
    const timedOut = shares.take('a', timers.wait, 1000);
    timers.fireAll();
    await expect(timedOut).rejects.toEqual(new ShareWaitEnded('timeout'));
    const controller = new AbortController();
    const aborted = shares.take('a', timers.wait, 1000, controller.signal);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ why: 'aborted' });
    // an aborted signal never queues
    await expect(shares.take('a', timers.wait, 1000, controller.signal)).rejects.toMatchObject({
      why: 'aborted',
    });
    expect(shares.heldBy('a')).toBe(1);
    held();
    expect(shares.heldBy('a')).toBe(0);
    // a timer firing after its wait was granted does nothing
    const again = await shares.take('a', timers.wait, 1000);
    const late = shares.take('a', timers.wait, 1000);
    again();
    const granted = await late;
    timers.fireAll();
    expect(shares.heldBy('a')).toBe(1);
    granted();
    expect(shares.heldBy('a')).toBe(0);
  });

  it('refuses a share that is not a whole number of at least 1', () => {
    expect(() => new ConnectionShares(0)).toThrow(RangeError);
    expect(() => new ConnectionShares(1.5)).toThrow(RangeError);
  });
});
