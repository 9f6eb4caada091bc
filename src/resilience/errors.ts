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

/**
 * What a call that stops itself on abort (a database write: its connection closed and its
 * server thread killed) found out while stopping.
 */
export interface AbandonReport {
  /** the call's effect may still take place (it could not be confirmed stopped) */
  mayHaveApplied: boolean;
  /** the dependency itself was stuck (waiting on a server-wide lock, unreachable), not the call */
  dependencyStuck: boolean;
}

/** How an abandoned call stopped: what it rejects with once aborted, for the breaker to read. */
export class CallStoppedError extends DependencyError {
  constructor(
    dependency: string,
    readonly report: AbandonReport,
  ) {
    super(dependency, `${dependency}: abandoned at the call timeout`);
    this.name = 'CallStoppedError';
  }
}

/**
 * The call took longer than `call_timeout_ms`; it was abandoned and counted as a failure.
 * `abandon`: what the call reported while stopping, when it stops itself on abort (a write);
 * absent for a call that is only left behind (a read).
 */
export class CallTimeoutError extends DependencyError {
  constructor(
    dependency: string,
    readonly timeoutMs: number,
    readonly abandon?: AbandonReport,
  ) {
    super(dependency, `${dependency} did not answer within ${timeoutMs} ms`);
    this.name = 'CallTimeoutError';
  }

  /** a write the caller must treat as perhaps applied (retry with its Idempotency-Key) */
  get mayHaveApplied(): boolean {
    return this.abandon?.mayHaveApplied ?? false;
  }

  /** a write stopped while it waited on a row lock another transaction held: the node is fine */
  get waitedOnRowLock(): boolean {
    return this.abandon?.dependencyStuck === false;
  }
}
