/**
 * What an instance tells HAProxy's `agent-check` (issue 7): `drain` while shutting down, `ready up
 * 0%` while its etcd weight is 0, else `ready up <pct>%`.
 *
 * Weight 0 is a drain by weight (no new requests, open ones finish), as `shardgate-ctl lb sync`
 * sets it, not the administrative `drain`: that one (FDRAIN) stays until the agent's next check
 * after the weight is raised again, so flipping weights (api-1 back to 1, api-2 to 0 at once)
 * left no server in rotation for up to an agent interval, and HAProxy answered 503.
 *
 * HAProxy applies an agent percentage to the server's *initial* weight (the one in haproxy.cfg)
 * and accepts more than 100% (capped at 256 absolute). The instance knows its etcd weight
 * (`lb/weights/<id>`) from the live config, so it reports `etcdWeight × health factor` relative
 * to the initial weight: while healthy this is exactly the weight `shardgate-ctl lb sync` sets,
 * so the two never fight; while the event loop lags or most breakers are open the factor drops
 * and HAProxy sends this instance less traffic without marking it down. Without an etcd weight
 * the reply carries no percentage and HAProxy keeps whatever weight it has.
 */
import type { BreakerView } from '../resilience/circuit-breaker.js';

export interface AgentInputs {
  draining: boolean;
  /** p99 event-loop delay over the last interval, ms */
  eventLoopLagMs: number;
  breakers: BreakerView[];
  /** this instance's `lb/weights/<id>` value, if any */
  weight: number | undefined;
  /** the weight HAProxy's config gives this server (percentages are relative to it) */
  initialWeight: number;
}

export function healthFactor({
  eventLoopLagMs,
  breakers,
}: Pick<AgentInputs, 'eventLoopLagMs' | 'breakers'>): number {
  let factor = 1;
  if (eventLoopLagMs > 500) factor = 0.1;
  else if (eventLoopLagMs > 200) factor = 0.3;
  else if (eventLoopLagMs > 100) factor = 0.6;
  const open = breakers.filter((b) => b.state !== 'closed').length;
  if (breakers.length > 0 && open * 2 > breakers.length) factor = Math.min(factor, 0.25);
  return factor;
}

export function agentReply(inputs: AgentInputs): string {
  if (inputs.draining) return 'drain\n';
  if (inputs.weight === 0) return 'ready up 0%\n';
  if (inputs.weight === undefined) return 'ready up\n';
  const effective = Math.max(1, Math.round(inputs.weight * healthFactor(inputs)));
  return `ready up ${Math.round((effective * 100) / Math.max(1, inputs.initialWeight))}%\n`;
}
