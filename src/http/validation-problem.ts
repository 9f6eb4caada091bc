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
    return [{ field: k ? `${part}.${k}` : part, message: issue.message }];
  });
  // one message per field: the first check it failed (`1e300` is both too big and not an integer)
  const seen = new Set<string>();
  const flat = errors.flat().filter((e) => !seen.has(e.field) && seen.add(e.field));
  return new ProblemError({
    status: 400,
    code: 'validation_failed',
    title: 'Invalid request',
    detail: flat.map((e) => `${e.field}: ${e.message}`).join('; '),
    extra: { errors: flat },
  });
}

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
