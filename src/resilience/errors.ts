/**
 * Typed errors of dependency calls. Adapters turn library errors into these in one place each;
 * the app's error handler answers `DependencyError`s with 503 + Retry-After.
 */
export class DependencyError extends Error {
  readonly retryable = true;
  /** seconds a client should wait before retrying (Retry-After) */
  readonly retryAfterSeconds: number;
  constructor(
    readonly dependency: string,
    message: string,
    { retryAfterSeconds = 1, cause }: { retryAfterSeconds?: number; cause?: unknown } = {},
  ) {
    super(message, { cause });
    this.name = 'DependencyError';
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

/** The breaker of `dependency` is open (or half-open with all probe slots taken): the call was not made. */
export class BreakerOpenError extends DependencyError {
  constructor(dependency: string, retryAfterMs: number) {
    super(dependency, `circuit breaker ${dependency} is open`, {
      retryAfterSeconds: Math.max(1, Math.ceil(retryAfterMs / 1000)),
    });
    this.name = 'BreakerOpenError';
  }
}

/** The call took longer than `call_timeout_ms`; it was abandoned and counted as a failure. */
export class CallTimeoutError extends DependencyError {
  constructor(dependency: string, timeoutMs: number) {
    super(dependency, `${dependency} did not answer within ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
  }
}
