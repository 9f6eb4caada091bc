/**
 * A call that failed because THIS process is out of file descriptors (`EMFILE`: its own limit,
 * `ulimit -n` / LimitNOFILE) or the system's file table is full (`ENFILE`) says nothing of the
 * dependency it was for: the socket was never opened. An outside check lowered an instance's
 * limit to 64 under 60 idle client sockets: every new MariaDB connection failed with EMFILE, the
 * master's breaker opened on it and flapped 7 times in 12 s, all writes answered
 * `dependency_unavailable` and `/health/ready` stayed 200, so HAProxy kept sending traffic.
 *
 * - `ownResourceShortage(error)` finds such a failure as the libraries give it: a Node `net`/`fs`
 *   error (`code: 'EMFILE'`, `errno: -24`), as mysql2 and ioredis pass it on (mysql2 marks it
 *   `fatal`), wrapped as a `cause` (drizzle, DependencyError: db/mysql-errors.ts toUnavailable
 *   keeps such a driver error as its cause), in an AggregateError's `errors`, or only in
 *   grpc-js's message (`No connection established. Last error: connect EMFILE …`; amqplib
 *   rethrows the socket's error). Never in any other message: a review found the first version's
 *   match of `EMFILE` anywhere in a message taking a deadlock's `Failed query: … params: EMFILE`
 *   (drizzle puts a statement's parameters in its message: a client's `Idempotency-Key` or a
 *   book's title) for a shortage, so any client could make both instances unready. An error the
 *   server answered (`sqlState`) is never one, nor is anything it wraps. The circuit breaker
 *   looks for one only in an error it would count as the dependency's failure, and counts it as
 *   neither a failure nor a success (as a call that waited for a busy pool:
 *   `DependencyError.busy`); the caller gets 503 `instance_out_of_resources`
 *   (http/dependency-problem.ts).
 * - `ResourceShortage` remembers the last one seen: for SHORTAGE_WINDOW_MS after it,
 *   `/health/ready` answers 503 `instance_out_of_resources`, so HAProxy sends the traffic to the
 *   other instances; each is counted (`process_descriptors_exhausted_total`) and warned about at
 *   most once a minute, with the soft limit where the runtime tells it (Node on Linux:
 *   `/proc/self/limits`, read by entry/node.ts; this file stays runtime-neutral).
 */
import type { Logger } from '../observability/logger.js';
import type { CounterHandle, Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';

export type ShortageCode = 'EMFILE' | 'ENFILE';

/** how long after the last shortage seen the instance answers not ready */
export const SHORTAGE_WINDOW_MS = 5000;

/** libuv's errno values on Linux (negated by Node), and the positive ones a few libraries keep */
const ERRNO: Readonly<Record<number, ShortageCode>> = {
  [-24]: 'EMFILE',
  [-23]: 'ENFILE',
  24: 'EMFILE',
  23: 'ENFILE',
};
/** grpc-js's message of a channel that could not connect (etcd3's calls): the only message read */
const IN_GRPC_MESSAGE = /Last error: connect (EMFILE|ENFILE)\b/;

interface Shaped {
  code?: unknown;
  errno?: unknown;
  syscall?: unknown;
  message?: unknown;
  cause?: unknown;
  errors?: unknown;
  sqlState?: unknown;
}

/** the shortage `error` (or an error it wraps, up to a few levels) tells of, if any */
export function ownResourceShortage(error: unknown, depth = 0): ShortageCode | undefined {
  if (typeof error !== 'object' || error === null || depth > 5) return undefined;
  const e = error as Shaped;
  // the server answered: whatever its text says, nothing of this process
  if (typeof e.sqlState === 'string') return undefined;
  if (e.code === 'EMFILE' || e.code === 'ENFILE') return e.code;
  // a numeric errno only with a syscall beside it: MariaDB's own errnos (1040, …) have none
  if (typeof e.errno === 'number' && typeof e.syscall === 'string' && ERRNO[e.errno]) return ERRNO[e.errno];
  if (typeof e.message === 'string') {
    const m = IN_GRPC_MESSAGE.exec(e.message);
    if (m) return m[1] as ShortageCode;
  }
  if (Array.isArray(e.errors))
    for (const inner of e.errors) {
      const found = ownResourceShortage(inner, depth + 1);
      if (found) return found;
    }
  return e.cause === undefined ? undefined : ownResourceShortage(e.cause, depth + 1);
}

export interface ShortageSeen {
  code: ShortageCode;
  /** ms since it was last seen */
  agoMs: number;
  /** the soft limit on open files, where known */
  softLimit?: number;
}

export class ResourceShortage {
  private lastAt = Number.NEGATIVE_INFINITY;
  private lastCode: ShortageCode = 'EMFILE';
  private readonly counter: CounterHandle;
  private readonly warnings: WarnLimiter;

  constructor({
    logger,
    metrics,
    softLimit = () => undefined,
    now = () => performance.now(),
  }: {
    logger: Logger;
    metrics: Metrics;
    /** the soft `Max open files` of this process, where the runtime tells it */
    softLimit?: () => number | undefined;
    now?: () => number;
  }) {
    this.softLimit = softLimit;
    this.now = now;
    this.counter = metrics.counter({
      name: 'process_descriptors_exhausted_total',
      help: 'dependency calls that failed because this process was out of file descriptors (EMFILE) or the system file table was full (ENFILE)',
      labelNames: ['code'],
    });
    this.warnings = new WarnLimiter(logger, 60_000, now);
  }

  private readonly softLimit: () => number | undefined;
  private readonly now: () => number;

  /** a call for `dependency` failed so (`code`); `error` for the log line */
  note(code: ShortageCode, dependency: string, error?: unknown): void {
    this.lastAt = this.now();
    this.lastCode = code;
    this.counter.inc({ code });
    this.warnings.warn(
      {
        code,
        dependency,
        softLimit: this.softLimit(),
        err: error instanceof Error ? error.message : undefined,
      },
      code === 'EMFILE'
        ? 'this instance is out of file descriptors (EMFILE): a connection to a dependency could not be opened; not ready until it passes (raise LimitNOFILE / ulimit -n, see docs/operations.md)'
        : "the system's file table is full (ENFILE): a connection to a dependency could not be opened; not ready until it passes",
    );
  }

  /** the shortage seen within SHORTAGE_WINDOW_MS, if any */
  current(): ShortageSeen | undefined {
    const agoMs = this.now() - this.lastAt;
    if (agoMs > SHORTAGE_WINDOW_MS) return undefined;
    const softLimit = this.softLimit();
    return { code: this.lastCode, agoMs, ...(softLimit === undefined ? {} : { softLimit }) };
  }
}
