/**
 * The 503 a DependencyError answers (app.ts's error handler), by what is known of the call: a
 * write that may have applied, one never sent (the pool full, or this process out of file
 * descriptors: `instance_out_of_resources`), one that waited on its tenant's
 * own row lock, a dependency whose server is out of disk space or memory
 * (`dependency_out_of_resources`), or the dependency unavailable; and the line the instance logs
 * for each, so an operator tells contention and "may have applied" from an outage.
 */
import { CallTimeoutError, type DependencyError, type ServerShortage } from '../resilience/errors.js';
import { ownResourceShortage } from '../resilience/own-resources.js';
import type { ProblemInit } from './problem.js';

/** the log line of a 503 by its code; others say `dependency unavailable` */
export const DEPENDENCY_LOG_LINE: Readonly<Record<string, string>> = {
  write_outcome_unknown: 'write outcome unknown: it may have applied',
  dependency_busy:
    "dependency busy: every connection it may use in use (the pool's, or its tenant's share), the request was not sent",
  write_contended: "write contended: it waited on its tenant's own row locks, not applied",
  instance_out_of_resources:
    'instance out of resources: this process could not open a connection (EMFILE/ENFILE), the request was not sent',
  dependency_out_of_resources:
    "dependency out of resources: the database server is out of disk space or memory (the log line's err says which), not applied",
};

/** what a client is told the dependency's server ran out of */
const SHORTAGE_TEXT: Readonly<Record<ServerShortage, string>> = {
  disk_space: 'is out of disk space',
  disk_write: 'cannot write to its disk',
  memory: 'is out of memory',
};

/** the 503 a DependencyError answers, by what is known of the call */
export function dependencyProblem(error: DependencyError): ProblemInit {
  const headers = { 'Retry-After': String(error.retryAfterSeconds) };
  // before the others: a socket this process could not open was never a request sent
  const shortage = error instanceof CallTimeoutError ? undefined : ownResourceShortage(error);
  if (shortage)
    return {
      status: 503,
      code: 'instance_out_of_resources',
      title: 'Instance out of resources',
      detail: `this instance ran out of ${shortage === 'EMFILE' ? 'file descriptors' : "the system's file table"} (${shortage}) and could not open a connection to ${error.dependency}: the request was not sent, it was not applied. ${error.dependency} itself may be fine; retry in ${error.retryAfterSeconds} s (another instance may serve it)`,
      headers,
    };
  if (error instanceof CallTimeoutError && error.mayHaveApplied)
    return {
      status: 503,
      code: 'write_outcome_unknown',
      title: 'Write outcome unknown',
      detail: `${error.dependency} did not answer in time and the write could not be confirmed stopped: it may still be applied. Retry it with the same Idempotency-Key, or read before retrying`,
      headers,
    };
  if (error.outcomeUnknown)
    return {
      status: 503,
      code: 'write_outcome_unknown',
      title: 'Write outcome unknown',
      detail: error.serverShortage
        ? `${error.dependency} ${SHORTAGE_TEXT[error.serverShortage]} and failed the write's COMMIT: a server may report that also for a write it committed, so it may have been applied. Retry it with the same Idempotency-Key in ${error.retryAfterSeconds} s, or read before retrying`
        : `the connection to ${error.dependency} was lost after the write's COMMIT was sent: it may have been applied. Retry it with the same Idempotency-Key, or read before retrying`,
      headers,
    };
  if ((error instanceof CallTimeoutError && error.ownWait === 'connection') || error.busy)
    return {
      status: 503,
      code: 'dependency_busy',
      title: 'Service busy',
      detail: `every connection of this instance to ${error.dependency} that this request may use (all of them, or this tenant's share) was in use (requests waiting on row locks, or a burst) and the request was not sent: it was not applied; retry in ${error.retryAfterSeconds} s`,
      headers,
    };
  if (error instanceof CallTimeoutError && error.ownWait === 'row-lock')
    return {
      status: 503,
      code: 'write_contended',
      title: 'Write contended',
      detail: `the write waited over ${error.timeoutMs} ms for rows another request of this tenant holds (the same book or member, or a long transaction) and was stopped: it was not applied; retry in ${error.retryAfterSeconds} s`,
      headers,
    };
  if (error.serverShortage)
    return {
      status: 503,
      code: 'dependency_out_of_resources',
      title: 'Dependency out of resources',
      // the dependency's name only, as below: the server's text names its files
      detail: `${error.dependency} ${SHORTAGE_TEXT[error.serverShortage]}: the request failed there and nothing was written. Retry in ${error.retryAfterSeconds} s`,
      headers,
    };
  return {
    status: 503,
    code: 'dependency_unavailable',
    title: 'Service temporarily unavailable',
    // the dependency's name (`mysql-master:shard-1`), not the error: that names hosts and
    // ports, which a client has no use for; the log line has it
    detail: `${error.dependency} is unavailable; retry in ${error.retryAfterSeconds} s`,
    headers,
  };
}
