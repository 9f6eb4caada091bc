import { describe, expect, it } from 'vitest';
import type { BreakerView } from '../resilience/circuit-breaker.js';
import { agentReply } from './agent-reply.js';

const b = (state: BreakerView['state']): BreakerView => ({
  name: 'x',
  kind: 'redis',
  state,
  failures: 0,
  settings: { failure_threshold: 1, reset_timeout_ms: 1000, half_open_max_calls: 1, call_timeout_ms: 10 },
  since: '',
});

describe('agentReply', () => {
  it('says drain while shutting down', () => {
    expect(agentReply({ draining: true, eventLoopLagMs: 0, breakers: [] })).toBe('drain\n');
  });
  it('reports full weight when healthy and less while lagging or mostly broken', () => {
    expect(agentReply({ draining: false, eventLoopLagMs: 5, breakers: [b('closed')] })).toBe(
      'ready up 100%\n',
    );
    expect(agentReply({ draining: false, eventLoopLagMs: 250, breakers: [] })).toBe('ready up 30%\n');
    expect(
      agentReply({ draining: false, eventLoopLagMs: 5, breakers: [b('open'), b('half_open'), b('closed')] }),
    ).toBe('ready up 25%\n');
  });
});
