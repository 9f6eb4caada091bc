/**
 * "A dependency cannot serve this call right now": a node refused or timed out, its pool queue is
 * full, or its circuit breaker is open. A `DependencyError` (errors.ts), so the app answers it
 * with 503 problem+json `dependency_unavailable` and `Retry-After`. Adapters create it in one place
 * each; the only other place that rethrows one is the database breaker guard, which names a
 * node by its breaker (`mysql-master:shard-1`) instead of its address.
 */
import { DependencyError, type DependencyErrorOptions } from './errors.js';

export class DependencyUnavailableError extends DependencyError {
  constructor(
    dependency: string,
    /** what went wrong, without the dependency's name (`ECONNREFUSED`, `no free connection …`) */
    readonly reason: string,
    options: DependencyErrorOptions = {},
  ) {
    super(dependency, `${dependency}: ${reason}`, options);
    this.name = 'DependencyUnavailableError';
  }
}

/**
 * A write whose transaction kept meeting others' locks (deadlocks, lock wait timeouts) until the
 * adapter's retries ran out: the master answered every attempt. Told apart from the other
 * unavailabilities (no free connection, a lost connection) so that a caller that knows what it
 * contended for can answer more precisely (routes/idempotency.ts: its own key, in progress).
 */
export class ConflictPersistedError extends DependencyUnavailableError {
  constructor(dependency: string, options: DependencyErrorOptions = {}) {
    super(dependency, 'transaction conflict persisted', options);
    this.name = 'ConflictPersistedError';
  }
}
