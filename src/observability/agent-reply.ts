/**
 * What an instance tells HAProxy's `agent-check` (issue 7): `drain` while shutting down, else
 * `ready up` with a weight percentage that drops while the event loop lags or most breakers are
 * open — HAProxy then sends this instance less traffic without marking it down.
 */
import type { BreakerView } from '../resilience/circuit-breaker.js';

export interface AgentInputs {
  draining: boolean;
  /** p99-ish event-loop delay over the last interval, ms */
  eventLoopLagMs: number;
  breakers: BreakerView[];
}

export function agentReply({ draining, eventLoopLagMs, breakers }: AgentInputs): string {
  if (draining) return 'drain\n';
  let pct = 100;
  if (eventLoopLagMs > 500) pct = 10;
  else if (eventLoopLagMs > 200) pct = 30;
  else if (eventLoopLagMs > 100) pct = 60;
  const open = breakers.filter((b) => b.state !== 'closed').length;
  if (breakers.length > 0 && open * 2 > breakers.length) pct = Math.min(pct, 25);
  return `ready up ${pct}%\n`;
}
