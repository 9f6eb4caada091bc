import { describe, expect, it } from 'vitest';
import type { ReplicationPosition } from '../domain/data-access.js';
import { PendingRaises, type RaiseFn } from './pending-raises.js';

const pos = (gtid: string): ReplicationPosition => ({ shardId: 'shard-1', flavour: 'mariadb', gtid });

/** a raise function that records what it sent and fails while `down` */
function recorder() {
  const sent: Array<[string, string]> = [];
  const state = { down: false };
  const fn: RaiseFn = async (key, _flavour, position) => {
    if (state.down) throw new Error('down');
    sent.push([key, position]);
  };
  return { sent, state, fn };
}

describe('PendingRaises', () => {
  it('keeps one merged position per key and sends it once the store answers', async () => {
    const r = recorder();
    const pending = new PendingRaises(r.fn, r.fn);
    pending.keep('v:book:1', pos('0-1-5'));
    pending.keep('v:book:1', pos('0-1-3')); // older: never lowers what is kept
    pending.keep('v:books', pos('0-1-4'));
    expect(pending.size).toBe(2);
    r.state.down = true;
    await pending.retryNow();
    expect(pending.size).toBe(2);
    r.state.down = false;
    await pending.retryNow();
    expect(pending.size).toBe(0);
    expect(r.sent).toEqual([
      ['v:book:1', '0-1-5'],
      ['v:books', '0-1-4'],
    ]);
  });

  it('sends no raise dropped during a pass (a shard forgotten after its history went back)', async () => {
    const sent: string[] = [];
    let release: () => void = () => {};
    let first = true;
    const fn: RaiseFn = async (key, _flavour, position) => {
      if (first) {
        first = false;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      }
      sent.push(`${key}=${position}`);
    };
    const pending = new PendingRaises(fn, fn);
    pending.keep('sg:{a}:shard-2:v:book:1', pos('0-21-5'));
    pending.keep('sg:{a}:shard-1:v:book:1', pos('0-11-8314'));
    const retry = pending.retryNow();
    pending.drop((key) => key.includes('}:shard-1:'));
    release();
    await retry;
    expect(sent).toEqual(['sg:{a}:shard-2:v:book:1=0-21-5']);
    expect(pending.size).toBe(0);
  });

  it('does not drop a newer raise kept while an older one for the same key was in flight', async () => {
    const sent: string[] = [];
    let release: () => void = () => {};
    let first = true;
    const fn: RaiseFn = async (_key, _flavour, position) => {
      if (first) {
        first = false;
        await new Promise<void>((resolve) => {
          release = resolve;
        });
      }
      sent.push(position);
    };
    const pending = new PendingRaises(fn, fn);
    pending.keep('v:book:1', pos('0-1-3'));
    const retry = pending.retryNow();
    // a write commits while the older raise is on its way
    pending.keep('v:book:1', pos('0-1-7'));
    release();
    await retry;
    expect(sent).toEqual(['0-1-3']);
    expect(pending.size).toBe(1);
    await pending.retryNow();
    expect(sent).toEqual(['0-1-3', '0-1-7']);
    expect(pending.size).toBe(0);
    pending.stop();
  });

  it('keeps at most `max` keys, still merging into those it holds', async () => {
    const r = recorder();
    const pending = new PendingRaises(r.fn, r.fn, 2);
    pending.keep('a', pos('0-1-1'));
    pending.keep('b', pos('0-1-1'));
    pending.keep('c', pos('0-1-1'));
    pending.keep('a', pos('0-1-9'));
    expect(pending.size).toBe(2);
    await pending.retryNow();
    expect(r.sent).toEqual([
      ['a', '0-1-9'],
      ['b', '0-1-1'],
    ]);
  });

  it('at shutdown sends through the direct path and answers how many are left', async () => {
    const breaker = recorder();
    breaker.state.down = true; // the breaker is still open from the outage
    const direct = recorder();
    direct.state.down = true;
    const pending = new PendingRaises(breaker.fn, direct.fn);
    pending.keep('a', pos('0-1-1'));
    pending.keep('b', pos('0-1-2'));
    expect(await pending.flush(50)).toBe(2);
    direct.state.down = false;
    expect(await pending.flush(1000)).toBe(0);
    expect(direct.sent).toEqual([
      ['a', '0-1-1'],
      ['b', '0-1-2'],
    ]);
    expect(breaker.sent).toEqual([]);
    pending.stop();
  });
});
