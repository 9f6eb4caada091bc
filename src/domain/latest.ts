/**
 * The latest of some times: what a stored time that must not go backwards takes (a row's
 * `updated_at` against its last change, a loan's end against its start). Times read before a row
 * lock, or written by an instance whose clock set them, can be earlier than the row's own.
 */
export function latest(first: Date, ...rest: Date[]): Date {
  let result = first;
  for (const t of rest) if (t.getTime() > result.getTime()) result = t;
  return result;
}
