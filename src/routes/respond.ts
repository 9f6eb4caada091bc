/**
 * How library routes turn domain outcomes into HTTP: a Failure becomes problem+json (kind →
 * status), a write gets `X-Consistency-Token` (committed or refused, `unwrapWrite`), a read gets
 * `X-Read-From`.
 */
import type { Context } from 'hono';
import type { AppEnv } from '../app-env.js';
import type { ReadOptions, ReadSource, ReplicationPosition, WriteOutcome } from '../domain/data-access.js';
import type { Failure, FailureKind, Result } from '../domain/result.js';
import { bearerChallenge } from '../http/bearer-challenge.js';
import { ProblemError } from '../http/problem.js';
import { setHeader } from '../http/response-headers.js';
import { fieldProblem } from '../http/validation-problem.js';
import { CONSISTENCY_HEADER, FAILURE_STATUS, READ_FROM_HEADER } from './outcome-headers.js';

const TITLE: Record<FailureKind, string> = {
  unauthorized: 'Unauthorized',
  forbidden: 'Forbidden',
  not_found: 'Not found',
  conflict: 'Conflict',
};

export function failureProblem(failure: Failure): ProblemError {
  return new ProblemError({
    status: FAILURE_STATUS[failure.kind],
    code: failure.code,
    title: TITLE[failure.kind],
    detail: failure.detail,
    headers:
      failure.kind === 'unauthorized' ? { 'WWW-Authenticate': bearerChallenge(failure.code) } : undefined,
  });
}

/** The value of a Success; a Failure is thrown as its problem. */
export function unwrap<T>(result: Result<T>): T {
  if (!result.ok) throw failureProblem(result);
  return result.value;
}

/**
 * The value of a write that committed; a refused one (a Failure, rolled back) is thrown as its
 * problem, answering the consistency token of the master's position when it was refused, so a
 * read with it sees what the refusal saw (the member who holds the email, the loan that holds
 * the last copy).
 */
export async function unwrapWrite<T>(c: Context<AppEnv>, outcome: WriteOutcome<T>): Promise<T> {
  if (outcome.result.ok) return outcome.result.value;
  await markWritten(c, outcome.position);
  throw failureProblem(outcome.result);
}

/** the read options of this request: the verified consistency token, if any */
export function readOptions(c: Context<AppEnv>): ReadOptions {
  const position = c.get('readPosition');
  return position ? { position } : {};
}

export function markRead(c: Context<AppEnv>, readFrom: ReadSource): void {
  setHeader(c, READ_FROM_HEADER, readFrom);
}

export async function markWritten(
  c: Context<AppEnv>,
  position: ReplicationPosition | undefined,
): Promise<void> {
  if (!position) return;
  setHeader(
    c,
    CONSISTENCY_HEADER,
    await c.get('services').consistencyTokens.sign(position, c.get('tenant').id),
  );
}

/** 400 naming a query parameter that passed the schema but is still not acceptable */
export function invalidQuery(field: string, message: string): ProblemError {
  return fieldProblem(`query.${field}`, message);
}
