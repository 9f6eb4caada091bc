/**
 * The request id of an answer (CONTRACT.md §6): the caller's own `X-Request-Id` when it is short
 * and plain (1–128 of `A-Z a-z 0-9 . _ : -`), so an id HAProxy forwards is the one the instance
 * logs and answers; anything else (absent, longer, blanks, other characters, a doubled header
 * joined with ", ") is replaced by a fresh id. The one check of a caller's id: createApp and the
 * Node entry's raw-request refusals (entry/raw-request-guard.ts) both keep or replace it here.
 */
export const REQUEST_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

export function requestIdOf(
  incoming: string | undefined,
  newId: () => string = () => crypto.randomUUID(),
): string {
  return incoming !== undefined && REQUEST_ID_PATTERN.test(incoming) ? incoming : newId();
}
