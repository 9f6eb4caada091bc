/**
 * Turns a zod validation failure of a request part (json, query, param, header) into a 400
 * problem naming every invalid field, e.g. `body.email: Invalid email address`.
 */
import type { z } from 'zod';
import { ProblemError } from './problem.js';

const PART_NAMES: Record<string, string> = { json: 'body', query: 'query', param: 'path', header: 'header' };

export function validationProblem(target: string, error: z.ZodError): ProblemError {
  const part = PART_NAMES[target] ?? target;
  const errors = error.issues.map((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({
        field: `${part}.${[...issue.path, k].join('.')}`,
        message: 'unknown field',
      }));
    }
    const k = issue.path.join('.');
    return [{ field: k ? `${part}.${k}` : part, message: issueMessage(issue) }];
  });
  // one message per field: the first check it failed (`1e300` is both too big and not an integer)
  const seen = new Set<string>();
  const flat = errors.flat().filter((e) => !seen.has(e.field) && seen.add(e.field));
  // the answer stays small whatever the request holds (1,500 unknown query parameters once made
  // a 400 of 115 KB): the first MAX_LISTED fields, each name cut at MAX_FIELD_CHARS
  const listed = flat.slice(0, MAX_LISTED).map((e) => ({ ...e, field: cut(e.field) }));
  const more = flat.length - listed.length;
  return new ProblemError({
    status: 400,
    code: 'validation_failed',
    title: 'Invalid request',
    detail:
      listed.map((e) => `${e.field}: ${e.message}`).join('; ') +
      (more > 0 ? `; and ${more} more invalid field${more === 1 ? '' : 's'}` : ''),
    extra: { errors: listed },
  });
}

/**
 * A wrong type in words, not zod's ("Invalid input: expected string, received undefined": an
 * outside check of the first hour): a field left out is `required`, else what it must be and
 * what was sent (`must be a number, not a string`; an integer is `a whole number`, and 1.5 is
 * `a fraction`). Only zod's own wording is rewritten: a message a schema gives itself, and every
 * other issue, stay.
 */
function issueMessage(issue: z.core.$ZodIssue): string {
  if ((issue.code === 'too_big' || issue.code === 'too_small') && /^Too (big|small): /.test(issue.message))
    return boundMessage(issue);
  const zods = /^Invalid input: expected (\w+), received (\w+)$/.exec(issue.message);
  if (issue.code !== 'invalid_type' || !zods) return issue.message;
  const [, expected, received] = zods as unknown as [string, string, string];
  if (received === 'undefined') return 'required';
  // "a whole number, not a number" read as a contradiction (an outside check)
  if (expected === 'int' && received === 'number') return 'must be a whole number, not a fraction';
  const noun = (type: string) =>
    type === 'int'
      ? 'a whole number'
      : type === 'null' || type === 'NaN' || type === 'never'
        ? type
        : type === 'Infinity'
          ? 'infinite (out of range)'
          : `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
  return `must be ${noun(expected)}, not ${noun(received)}`;
}

/**
 * A length or range bound in words ("Too big: expected string to have <=200 characters" was
 * zod's, an outside check): `must be at most 200 characters`, `must not be empty`, `must be at
 * least 1`. Other origins (arrays, dates) keep zod's wording.
 */
function boundMessage(issue: z.core.$ZodIssueTooBig | z.core.$ZodIssueTooSmall): string {
  const big = issue.code === 'too_big';
  const bound = Number(big ? issue.maximum : issue.minimum);
  const inclusive = issue.inclusive !== false;
  if (issue.origin === 'string') {
    if (issue.exact) return `must be exactly ${bound} character${bound === 1 ? '' : 's'}`;
    if (!big && bound === 1 && inclusive) return 'must not be empty';
    const n = inclusive ? bound : big ? bound - 1 : bound + 1;
    return `must be at ${big ? 'most' : 'least'} ${n} character${n === 1 ? '' : 's'}`;
  }
  if (issue.origin === 'number' || issue.origin === 'int')
    return inclusive
      ? `must be at ${big ? 'most' : 'least'} ${bound}`
      : `must be ${big ? 'less' : 'more'} than ${bound}`;
  return issue.message;
}

/** at most this many fields are named in one 400 */
export const MAX_LISTED = 20;
const MAX_FIELD_CHARS = 100;

const cut = (field: string) => {
  const chars = [...field];
  return chars.length > MAX_FIELD_CHARS ? `${chars.slice(0, MAX_FIELD_CHARS).join('')}…` : field;
};

/** A 400 naming one field (`query.author`, `body`, `header.Idempotency-Key`) and what is wrong with it. */
export function fieldProblem(field: string, message: string): ProblemError {
  return new ProblemError({
    status: 400,
    code: 'validation_failed',
    title: 'Invalid request',
    detail: `${field}: ${message}`,
    extra: { errors: [{ field, message }] },
  });
}

/**
 * A 400 for a body that cannot be read as JSON at all (not JSON, empty, not UTF-8): `bad_request`
 * with one title whatever the cause (RFC 9457 §3.1.3: a type's title does not change between
 * occurrences), the cause in `detail` and `errors` naming `body`. A body that reads but holds
 * invalid values is `validation_failed` (validationProblem).
 */
export function unreadableBody(message: string): ProblemError {
  return new ProblemError({
    status: 400,
    code: 'bad_request',
    title: 'Bad request',
    detail: `body: ${message}`,
    extra: { errors: [{ field: 'body', message }] },
  });
}
