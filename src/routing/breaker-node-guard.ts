/**
 * NodeGuard backed by the breaker registry: every call to a database node — probes, reads, write
 * transactions — runs inside that node's breaker (`mysql-master:<shard>`,
 * `mysql-replica:<shard>:<n>`). Only dependency failures count against the node (unreachable,
 * timed out); SQL outcomes such as a duplicate key or a deadlock are the caller's business and
 * count as successes. An open breaker refuses at once with BreakerOpenError (503 + Retry-After
 * upstream; the router reads from the master instead of a refused replica).
 */
import type { BreakerRegistry } from '../resilience/breaker-registry.js';
import { DependencyError } from '../resilience/errors.js';
import type { NodeGuard, NodeIdentity, NodeSession, SqlNode } from './sql-node.js';

export function breakerNodeGuard(breakers: BreakerRegistry): NodeGuard {
  return {
    wrap<S extends NodeSession>(node: SqlNode<S>, identity: NodeIdentity): SqlNode<S> {
      const breaker = breakers.get(identity.name, identity.kind);
      return {
        key: node.key,
        run: (fn) => breaker.execute(() => node.run(fn), { isFailure: (e) => e instanceof DependencyError }),
      };
    },
  };
}
