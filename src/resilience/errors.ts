/**
 * Typed errors of dependency calls. Adapters turn library errors into these in one place each;
 * the app's error handler answers `DependencyError`s with 503 + Retry-After.
 */

/**
 * What the dependency's server itself ran out of (not this process: resilience/own-resources.ts):
 * `disk_space` (a full disk or tablespace), `disk_write` (it could not write its files for another
 * reason the OS gave: an I/O error, a read-only file system), `memory`.
 */
export type ServerShortage = 'disk_space' | 'disk_write' | 'memory';
export class DependencyError extends Error {
  readonly retryable = true;
  /** seconds a client should wait before retrying (Retry-After) */
  readonly retryAfterSeconds: number;
  /**
   * The call waited for a free connection of this process's pool to the dependency and was never
   * sent: every connection was in use (by calls that wait on row locks, or a burst). It says
   * nothing of the dependency itself (the calls holding the connections do), so a breaker counts
   * it as neither failure nor success.
   */
  readonly busy: boolean;
  /**
   * The node refused the call as a write (a read-only server: a master demoted, or set
   * `read_only` by hand; a server out of disk space) while it may still answer reads: a breaker
   * counts it with timed-out writes, so its half-open trials are writes, not reads that would
   * close it at once.
   */
  readonly writesOnly: boolean;
  /**
   * The connection was lost after the write's COMMIT was sent: the write may have been applied
   * (503 `write_outcome_unknown`, not `dependency_unavailable`, which says it was not).
   */
  readonly outcomeUnknown: boolean;
  /**
   * The dependency answered, refusing the call for what it holds rather than for its health (a
   * table this build names is missing: a shard never migrated). A breaker counts it as a success,
   * as any SQL outcome: the node is up, and opening its breaker would refuse the calls that work.
   */
  readonly answered: boolean;
  /**
   * The node ended the statement at its own time limit (MariaDB's `max_statement_time`): it is
   * up, the statement took longer than it allows. A breaker counts it as a failure (a slow node);
   * a replica that ends a read so is not excluded for every read (shard-router.ts).
   */
  readonly endedAtTimeLimit: boolean;
  /**
   * The node's server is out of a resource of its own, server-wide (its disk, its memory): 503
   * `dependency_out_of_resources` naming it (http/dependency-problem.ts), counted against the
   * node as any failure (with `writesOnly` for its disk).
   */
  readonly serverShortage: ServerShortage | undefined;
  constructor(
    readonly dependency: string,
    message: string,
    {
      retryAfterSeconds = 1,
      cause,
      busy = false,
      writesOnly = false,
      outcomeUnknown = false,
      answered = false,
      endedAtTimeLimit = false,
      serverShortage,
    }: DependencyErrorOptions = {},
  ) {
    super(message, { cause });
    this.name = 'DependencyError';
    this.retryAfterSeconds = retryAfterSeconds;
    this.busy = busy;
    this.writesOnly = writesOnly;
    this.outcomeUnknown = outcomeUnknown;
    this.answered = answered;
    this.endedAtTimeLimit = endedAtTimeLimit;
    this.serverShortage = serverShortage;
  }
}

export interface DependencyErrorOptions {
  retryAfterSeconds?: number;
  cause?: unknown;
  busy?: boolean;
  writesOnly?: boolean;
  outcomeUnknown?: boolean;
  answered?: boolean;
  endedAtTimeLimit?: boolean;
  serverShortage?: ServerShortage;
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
  /**
   * not stuck: what the call waited for instead. `row-lock` (the default): a row lock another
   * transaction held; `connection`: a free connection of this process's pool (never sent)
   */
  waitedFor?: 'row-lock' | 'connection';
  /**
   * stuck: seen waiting on the server itself (a global read lock, a commit or backup lock, a
   * semi-sync acknowledgement), not merely unexplained
   */
  serverWide?: boolean;
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

  /**
   * A write stopped while it waited on something of its own, not on the node: a row lock another
   * transaction held (`row-lock`), or a free connection of the pool (`connection`: never sent).
   * Undefined when the node was stuck, or could not be confirmed not to be.
   */
  get ownWait(): 'row-lock' | 'connection' | undefined {
    if (this.abandon?.dependencyStuck !== false) return undefined;
    return this.abandon.waitedFor ?? 'row-lock';
  }
}
