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
    const keys =
      issue.code === 'unrecognized_keys'
        ? issue.keys.map((k) => [...issue.path, k].join('.'))
        : [issue.path.join('.')];
    return keys.map((k) => ({ field: k ? `${part}.${k}` : part, message: issue.message }));
  });
  const flat = errors.flat();
  return new ProblemError({
    status: 400,
    code: 'validation_failed',
    title: 'Invalid request',
    detail: flat.map((e) => `${e.field}: ${e.message}`).join('; '),
    extra: { errors: flat },
  });
}
