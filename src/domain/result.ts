/**
 * Results for expected outcomes (ARCHITECTURE.md rule 6): domain services return `Failure` for
 * not found / conflict / forbidden / unauthorized and throw only for the unexpected. Routes map a
 * failure's `kind` to an HTTP status and its `code` to the problem+json `code`.
 */
export type FailureKind = 'not_found' | 'conflict' | 'forbidden' | 'unauthorized';

export interface Failure {
  ok: false;
  kind: FailureKind;
  /** stable machine-readable code, e.g. `email_taken`, `no_copy_available` */
  code: string;
  detail: string;
}

export interface Success<T> {
  ok: true;
  value: T;
}

export type Result<T> = Success<T> | Failure;

export function ok<T>(value: T): Success<T> {
  return { ok: true, value };
}

export function fail(kind: FailureKind, code: string, detail: string): Failure {
  return { ok: false, kind, code, detail };
}
