/**
 * What an instance tells HAProxy's `agent-check` (issue 7): `drain` while shutting down, `up 0%`
 * while its etcd weight is 0, else `up <pct>%`; the word `ready` only in its first replies
 * (`announceReady`, see agent-check-server.ts).
 *
 * `ready` ends any drain or maintenance of the server, whoever set it: the one this instance's
 * predecessor set as it shut down (the reason to send it after a start), but also an operator's
 * `set server … state maint|drain`. Sent on every reply it undid an operator's maintenance within
 * a second (an outside check); now an operator's state stays, except one set while the instance
 * was starting.
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
 * the reply is relative to the weight in haproxy.cfg (`100%` while healthy), as `lb sync` sets it
 * for a deleted key: without one, `lb unset` did nothing while the sync daemon was down.
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
  /** lead with `ready`: ends a drain or maintenance, the predecessor's `drain` included */
  announceReady: boolean;
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
  const lead = inputs.announceReady ? 'ready ' : '';
  if (inputs.weight === 0) return `${lead}up 0%\n`;
  const weight = inputs.weight ?? inputs.initialWeight;
  const effective = Math.max(1, Math.round(weight * healthFactor(inputs)));
  return `${lead}up ${percentFor(effective, inputs.initialWeight)}%\n`;
}

/**
 * The whole percentage that HAProxy turns into `weight` on a server of initial weight `initial`:
 * it sets `floor(initial × pct / 100)`. The least pct reaching `weight`, so the weight is never
 * below the one asked (0 would drain the instance: a rounded 0% did, for weight 1 of 256), and
 * exactly it whenever a whole percentage gives it, which every weight does for initial weights up
 * to 100 (the default is 10). Above 100 a weight may come out a little higher (weight 1 of 200
 * is 2), for want of finer percentages.
 */
export function percentFor(weight: number, initial: number): number {
  const base = Math.max(1, initial);
  let pct = Math.ceil((weight * 100) / base);
  // float error in the division: step back while a lower whole percentage still reaches it
  while (pct > 1 && Math.floor((base * (pct - 1)) / 100) >= weight) pct--;
  while (Math.floor((base * pct) / 100) < weight) pct++;
  return pct;
}
