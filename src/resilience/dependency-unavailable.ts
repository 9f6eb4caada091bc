/**
 * "A dependency cannot serve this call right now": a node refused or timed out, its pool queue is
 * full, or its circuit breaker is open. A `DependencyError` (errors.ts), so the app answers it
 * with 503 problem+json `dependency_unavailable` and `Retry-After`. Adapters create it in one place
 * each; nothing else should catch-and-rethrow it.
 */
import { DependencyError } from './errors.js';

export class DependencyUnavailableError extends DependencyError {
  constructor(
    dependency: string,
    message: string,
    { cause, retryAfterSeconds }: { cause?: unknown; retryAfterSeconds?: number } = {},
  ) {
    super(dependency, `${dependency}: ${message}`, { cause, retryAfterSeconds });
    this.name = 'DependencyUnavailableError';
  }
}
