/**
 * The headers a library route sets from its outcome, and the statuses they can be on: the one
 * place respond.ts, cached-read.ts and members.ts (which set them) and v1-response-docs.ts (which
 * documents them) take them from, so the document cannot miss an answer that carries one.
 * - `X-Read-From` (every read: where it read) and `X-Cache` (a read through the read cache) are
 *   set as soon as the read returned, before a Failure it returned is thrown as its problem;
 * - `X-Consistency-Token` on a committed write, and on a write refused in its transaction (the
 *   master's position then, `unwrapWrite`).
 * So each is on the operation's 2xx answers and on any status a domain Failure answers with
 * (`FAILURE_STATUS`: 401 `token_revoked` or `invalid_credentials`, 403, 404 of a record, 409).
 */
import type { FailureKind } from '../domain/result.js';

export const READ_FROM_HEADER = 'X-Read-From';
export const CACHE_HEADER = 'X-Cache';
export const CONSISTENCY_HEADER = 'X-Consistency-Token';

/** the HTTP status of a domain Failure, by its kind */
export const FAILURE_STATUS: Readonly<Record<FailureKind, 401 | 403 | 404 | 409>> = {
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
};

/** the statuses an answer of a domain Failure can have, as the document's response keys */
export const FAILURE_STATUSES: ReadonlySet<string> = new Set(Object.values(FAILURE_STATUS).map(String));
