/**
 * The problem codes a /v1 operation can answer, each with its status and short meaning: the one
 * table /openapi.json lists them from (schemas.ts `problems`, v1-response-docs.ts). It follows the
 * "Problem codes" table of docs/http-api.md, which has every code with what to do about it
 * (routes/operation-codes.test.ts holds each code listed on an operation to that table's status).
 * Codes only HAProxy, the Node entry before routing, or no operation answers are not here.
 */
import { BODY_LIMIT_BYTES } from '../http/body-limit.js';

interface CodeEntry {
  status: number;
  meaning: string;
}

export const PROBLEM_CODES = {
  validation_failed: {
    status: 400,
    meaning: 'a field, header or query parameter is wrong; `errors[]` names each one',
  },
  bad_request: {
    status: 400,
    meaning: 'the body is not JSON, is empty where one is needed, or is not UTF-8; `errors[]` names `body`',
  },
  invalid_consistency_token: {
    status: 400,
    meaning: 'the `X-Consistency-Token` is not one this deployment signed (forged or malformed); drop it',
  },
  unauthorized: { status: 401, meaning: 'no Bearer member token was sent; log in' },
  invalid_token: {
    status: 401,
    meaning:
      'the token is malformed, forged, expired (member tokens live 1 hour) or of another issuer; log in again',
  },
  token_revoked: {
    status: 401,
    meaning: 'the member’s password changed after the token was issued, or the member is gone; log in again',
  },
  invalid_credentials: {
    status: 401,
    meaning: 'the email or the password is wrong (the same answer for both)',
  },
  tenant_mismatch: { status: 403, meaning: 'the token belongs to another tenant than `X-Tenant-ID`' },
  tenant_suspended: { status: 403, meaning: 'the tenant is suspended' },
  librarian_required: { status: 403, meaning: 'only a librarian of the tenant may do this' },
  wrong_current_password: {
    status: 403,
    meaning: '`currentPassword` is wrong (counted as a failed login of the account)',
  },
  origin_not_allowed: {
    status: 403,
    meaning:
      'a browser write from a page on an origin `cors/allowed_origins` does not list (nor the API’s own host); nothing is written',
  },
  tenant_not_found: { status: 404, meaning: 'no such tenant' },
  book_not_found: { status: 404, meaning: 'no such book in this tenant' },
  loan_not_found: {
    status: 404,
    meaning: 'no such loan of the calling member (another member’s loan is not found either)',
  },
  request_timeout: {
    status: 408,
    meaning:
      'the request was not received completely in time (Node entry: `server.requestTimeout`); the connection is closed',
  },
  email_taken: {
    status: 409,
    meaning: 'a member with this email (in any letter case) exists in this tenant',
  },
  no_copy_available: { status: 409, meaning: 'every copy is on loan, or the book has no copies' },
  already_returned: { status: 409, meaning: 'the loan was returned already' },
  book_on_loan: { status: 409, meaning: 'a copy of the book is on loan' },
  copies_on_loan: { status: 409, meaning: 'copies would go below the copies on loan' },
  idempotency_key_in_progress: {
    status: 409,
    meaning: 'the first request with this `Idempotency-Key` still runs; retry after `Retry-After`',
  },
  idempotency_key_answer_lost: {
    status: 409,
    meaning:
      'the first request with this `Idempotency-Key` committed, but its answer was lost; read the resource instead of sending the write again',
  },
  payload_too_large: { status: 413, meaning: `the body is over ${BODY_LIMIT_BYTES} bytes` },
  unsupported_media_type: {
    status: 415,
    meaning:
      'naming the header at fault: a body sent with a `Content-Type` other than `application/json` or `application/<subtype>+json` with a subtype of letters, `.` and `-` (so `application/problem+json` and `application/merge-patch+json` are taken; any letter case; parameters allowed, but a `charset` only `utf-8` or `utf8`), a body sent without a `Content-Type`, or a compressed one (`Content-Encoding` other than `identity`)',
  },
  idempotency_key_reused: {
    status: 422,
    meaning:
      'the `Idempotency-Key` was sent before with another request (another route or body); use a new key',
  },
  tenant_readonly: {
    status: 423,
    meaning:
      'the tenant is read-only: while a move to another shard makes it so (about a second), with `Retry-After`; set so by an operator, without',
  },
  too_many_login_attempts: {
    status: 429,
    meaning:
      'too many failed password checks (logins, password changes, registration repeats) for this account: refused until `Retry-After`',
  },
  headers_too_large: {
    status: 431,
    meaning: 'the request line and headers are over 16 KB together (Node entry); the connection is closed',
  },
  dependency_unavailable: {
    status: 503,
    meaning: 'a database node or Redis cannot be used now (its breaker open, or it failed); not applied',
  },
  dependency_busy: {
    status: 503,
    meaning:
      'every connection of the instance to the database node the request may use was in use (all of them, or its tenant’s share); not sent, so not applied',
  },
  instance_out_of_resources: {
    status: 503,
    meaning:
      'this instance is out of file descriptors and could not open a connection (not sent; the dependency may be fine)',
  },
  dependency_out_of_resources: {
    status: 503,
    meaning: 'the database server is out of disk space or memory; nothing written',
  },
  write_contended: {
    status: 503,
    meaning:
      'the write waited past the call timeout for rows another request of the tenant holds; not applied',
  },
  write_outcome_unknown: {
    status: 503,
    meaning:
      'the master did not answer in time and the write could not be confirmed stopped, or the connection was lost after its COMMIT was sent: it may still apply; retry with the same `Idempotency-Key`',
  },
  tenant_moved: {
    status: 503,
    meaning: 'the tenant was switched to another shard twice while the write ran; not applied: retry',
  },
  config_not_loaded: {
    status: 503,
    meaning:
      'the instance has not read the tenant directory from etcd yet (just started, or etcd unreachable since); another instance may answer',
  },
  server_busy: {
    status: 503,
    meaning:
      'the password check got no turn within 2 s at an instance checking as many as it may at once, the turns going round the tenants; nothing written',
  },
} as const satisfies Record<string, CodeEntry>;

export type ProblemCode = keyof typeof PROBLEM_CODES;
