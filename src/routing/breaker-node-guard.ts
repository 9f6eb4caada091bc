/**
 * NodeGuard backed by the breaker registry: every call to a database node — probes, reads, write
 * transactions — runs inside that node's breaker (`mysql-master:<shard>`,
 * `mysql-replica:<shard>:<n>`). Only dependency failures count against the node (unreachable,
 * timed out); SQL outcomes such as a duplicate key or a deadlock are the caller's business and
 * count as successes. An open breaker refuses at once with BreakerOpenError (503 + Retry-After
 * upstream; the router reads from the master instead of a refused replica). So does a half-open
 * one: its trials are reads of the node's replication position in the background
 * (CircuitBreaker.executeOrTrial), not the callers' calls, so a node that still hangs (SIGSTOP)
 * costs no request the call timeout each time the reset timeout runs out. Write transactions
 * (`cancellable`) are counted apart from reads (CircuitBreaker `writes`): a master that hangs only
 * on writes (a global read lock, a full disk) opens its breaker although its position probes
 * answer every second. Opened so by writes the server refused (read-only, out of disk), the
 * callers' reads pass while it is open and half-open (CircuitBreaker `writesRefused`). Half-open
 * after writes that timed out, a background read trial lets the callers' reads pass again,
 * then background write trials probe it (`probeWrite`: this process's `breaker_probes` row,
 * stopped on the server when abandoned, as a caller's write): callers' writes are refused until
 * `half_open_max_calls` of them committed in a row, so none waits on a master that still hangs,
 * and the breaker closes also on an instance that gets no writes. A master without the
 * `breaker_probes` table (migration 0004 not applied) fails the trial with an SQL error, which
 * counts as an answer: the breaker closes as if a write had gone through.
 *
 * While a node's breaker is open, each probe round tries the node beside it (`tryBesideBreaker`,
 * beside-breaker.ts: a connection of its own, not counted by the breaker), and an answer after a
 * failed attempt shortens the open spell: a node back after a blip is tried by the breaker's
 * trials about a second later, not only after `reset_timeout_ms`.
 *
 * A breaker belongs to the node it was made for: when a name comes to stand for another node
 * (`shards set-master`, a replica's address changed) the new node starts with a fresh, closed
 * breaker instead of the dead one's open state; the breakers of nodes no longer configured are
 * dropped (`retain`), so /health/circuit-breakers and /metrics list only the nodes in force.
 */
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { DependencyError } from '../resilience/errors.js';
import { besideBreakerOf } from './beside-breaker.js';
import type { NodeGuard, NodeIdentity, NodeSession, SqlNode } from './sql-node.js';

/**
 * How much sooner than the breaker's call timeout a call gives up waiting for a pool connection:
 * enough for its `busy` failure to reach the breaker before the breaker's own timer fires.
 */
export const BREAKER_ACQUIRE_MARGIN_MS = 100;

/** the pool wait of a call under `callTimeoutMs`: the margin, or a tenth of a short timeout */
export const acquireWithin = (callTimeoutMs: number) =>
  callTimeoutMs - Math.min(BREAKER_ACQUIRE_MARGIN_MS, callTimeoutMs / 10);

/**
 * `probeId`: this process's instance id, the key of its `breaker_probes` row on each master.
 * `explain`: gives a call's error back as what it means on that node, before the breaker judges
 * it (the data layer's: an unknown column on a shard whose schema is behind is the schema's
 * unavailability, not a bug); absent, errors pass as they are.
 */
export function breakerNodeGuard(
  breakers: BreakerRegistry,
  {
    probeId,
    explain = (error) => error,
  }: { probeId: string; explain?: (error: unknown, identity: NodeIdentity) => unknown },
): NodeGuard {
  /** breaker name → the key (host:port/database) of the node its breaker was made for */
  const nodeOf = new Map<string, string>();
  return {
    wrap<S extends NodeSession>(node: SqlNode<S>, identity: NodeIdentity): SqlNode<S> {
      if (nodeOf.get(identity.name) !== node.key) {
        breakers.remove(identity.name);
        nodeOf.set(identity.name, node.key);
      }
      const breaker = breakers.get(identity.name, identity.kind);
      const isFailure = (e: unknown) => e instanceof DependencyError;
      const role = identity.kind === 'mysql-master' ? 'master' : 'replica';
      // one object per node and kind of call, not per call; a master's trials carry the write
      // trial whichever call starts them, so the breaker closes without callers' writes
      const writeTrial =
        role === 'master'
          ? (call: { readonly signal: AbortSignal }) =>
              node.run((s) => s.probeWrite(probeId), { cancellable: true, signal: call.signal })
          : undefined;
      const trials = { trial: () => node.run((s) => s.position(role)), writeTrial, isFailure };
      const connectBeside = node.connectBeside?.bind(node);
      const writeTrials = { ...trials, writes: true };
      return {
        key: node.key,
        // a cancellable call (a write) gets the signal of the breaker's call timeout, so the call
        // the caller gave up on (503) is stopped, not committed later; other calls do not read
        // `signal` (an AbortController per read is measurable CPU). An unavailable node is named
        // by its breaker in the 503, never by its address.
        run: (fn, options) =>
          breaker.executeOrTrial(
            (call) => {
              const run = node.run(fn, {
                ...options,
                // a wait for a busy pool ends before the call timeout, as `busy` (not counted)
                acquireWithinMs: acquireWithin(breaker.callTimeoutMs()),
                // a write tells when it was sent and whether it committed (circuit-breaker.ts hungBy)
                ...(options?.cancellable
                  ? { signal: call.signal, onSent: () => call.sent(), onCommitted: () => call.committed() }
                  : {}),
              });
              options?.track?.(run);
              return run.catch((caught: unknown) => {
                const error = explain(caught, identity);
                throw error instanceof DependencyUnavailableError && error.dependency === node.key
                  ? new DependencyUnavailableError(identity.name, error.reason, {
                      cause: error,
                      retryAfterSeconds: error.retryAfterSeconds,
                      busy: error.busy,
                      writesOnly: error.writesOnly,
                      outcomeUnknown: error.outcomeUnknown,
                      answered: error.answered,
                      endedAtTimeLimit: error.endedAtTimeLimit,
                      serverShortage: error.serverShortage,
                    })
                  : error;
              });
            },
            // a cancellable call is a write transaction: its failures count apart from reads',
            // so a master that hangs only on writes opens its breaker despite its answered probes
            options?.cancellable ? writeTrials : trials,
          ),
        // asked before a write only (ahead of hashing a password): refused as its write would be
        admit: () => breaker.refuseIfOpen(writeTrials),
        ...(connectBeside
          ? {
              tryBesideBreaker: (withinMs: number) =>
                besideBreakerOf(breaker).maybeTry(withinMs, connectBeside),
            }
          : {}),
      };
    },
    retain(names: ReadonlySet<string>): void {
      for (const name of [...nodeOf.keys()]) {
        if (names.has(name)) continue;
        nodeOf.delete(name);
        breakers.remove(name);
      }
    },
  };
}
