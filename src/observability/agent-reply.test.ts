import { describe, expect, it } from 'vitest';
import type { BreakerView } from '../resilience/circuit-breaker.js';
import { agentReply, percentFor } from './agent-reply.js';

const b = (state: BreakerView['state']): BreakerView => ({
  name: 'x',
  kind: 'redis',
  state,
  failures: 0,
  settings: { failure_threshold: 1, reset_timeout_ms: 1000, half_open_max_calls: 1, call_timeout_ms: 10 },
  since: '',
});
const base = {
  draining: false,
  eventLoopLagMs: 5,
  breakers: [b('closed')],
  weight: 4,
  initialWeight: 1,
  announceReady: true,
};

describe('agentReply', () => {
  it('says drain while shutting down, and weight 0% (a drain by weight, no admin state) when the etcd weight is 0', () => {
    expect(agentReply({ ...base, draining: true })).toBe('drain\n');
    expect(agentReply({ ...base, weight: 0 })).toBe('ready up 0%\n');
    expect(agentReply({ ...base, weight: 0, draining: true })).toBe('drain\n');
  });
  it('reports the etcd weight relative to the initial weight while healthy', () => {
    expect(agentReply(base)).toBe('ready up 400%\n');
    expect(agentReply({ ...base, weight: 3, initialWeight: 3 })).toBe('ready up 100%\n');
    // no etcd weight: the weight in haproxy.cfg, as `lb sync` sets it for a deleted key
    expect(agentReply({ ...base, weight: undefined })).toBe('ready up 100%\n');
    expect(agentReply({ ...base, weight: undefined, initialWeight: 10, eventLoopLagMs: 250 })).toBe(
      'ready up 30%\n',
    );
  });
  it('gives the percentage that HAProxy (floor(initial × pct / 100)) turns into the weight asked, never into 0', () => {
    const applied = (initial: number, pct: number) => Math.floor((initial * pct) / 100);
    const wrong: string[] = [];
    for (let initial = 1; initial <= 256; initial++) {
      // the weights some whole percentage gives: every one for initial weights up to 100
      const reachable = new Set<number>();
      for (let p = 0; applied(initial, p) <= 256; p++) reachable.add(applied(initial, p));
      for (let weight = 1; weight <= 256; weight++) {
        const got = applied(initial, percentFor(weight, initial));
        const ok = reachable.has(weight) ? got === weight : got > weight;
        if (!ok || (initial <= 100 && got !== weight)) wrong.push(`${weight} of ${initial}: ${got}`);
      }
    }
    expect(wrong).toEqual([]);
    // before: weight 1 of 256 was `up 0%`, a drain; of 200 `up 1%`, weight 2, which stays so
    expect(agentReply({ ...base, weight: 1, initialWeight: 256 })).toBe('ready up 1%\n');
    expect(agentReply({ ...base, weight: 3, initialWeight: 7 })).toBe('ready up 43%\n');
  });
  it('reports less while the event loop lags or most breakers are open', () => {
    expect(agentReply({ ...base, weight: 10, eventLoopLagMs: 250 })).toBe('ready up 300%\n');
    expect(agentReply({ ...base, weight: 8, breakers: [b('open'), b('half_open'), b('closed')] })).toBe(
      'ready up 200%\n',
    );
    expect(agentReply({ ...base, weight: 1, eventLoopLagMs: 900 })).toBe('ready up 100%\n');
  });
  it("leads with ready only when told to: later replies leave an operator's drain or maintenance alone", () => {
    expect(agentReply({ ...base, announceReady: false })).toBe('up 400%\n');
    expect(agentReply({ ...base, announceReady: false, weight: 0 })).toBe('up 0%\n');
    expect(agentReply({ ...base, announceReady: false, draining: true })).toBe('drain\n');
  });
});
