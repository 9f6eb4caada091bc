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
