import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { MAX_LISTED, validationProblem } from './validation-problem.js';

describe('validationProblem', () => {
  it('names each invalid field once, in detail and errors', () => {
    const error = z.strictObject({ limit: z.number() }).safeParse({ limit: 'x', extra: 1 }).error!;
    const problem = validationProblem('query', error).init;
    expect(problem.extra?.errors).toEqual([
      { field: 'query.limit', message: expect.any(String) },
      { field: 'query.extra', message: 'unknown field' },
    ]);
    expect(problem.detail).toMatch(/^query\.limit: .+; query\.extra: unknown field$/);
  });

  it('words a wrong type for people: a missing field is required, else what it must be and what came', () => {
    const schema = z.strictObject({
      email: z.string(),
      copies: z.number(),
      tags: z.array(z.string()),
      ok: z.boolean(),
      n: z.number().int(),
      own: z.string({ error: 'a name, please' }),
    });
    const error = schema.safeParse({ copies: '3', tags: {}, ok: null, n: 3.5, own: 1 }).error!;
    expect(validationProblem('json', error).init.extra?.errors).toEqual([
      { field: 'body.email', message: 'required' },
      { field: 'body.copies', message: 'must be a number, not a string' },
      { field: 'body.tags', message: 'must be an array, not an object' },
      { field: 'body.ok', message: 'must be a boolean, not null' },
      { field: 'body.n', message: 'must be a whole number, not a fraction' },
      { field: 'body.own', message: 'a name, please' },
    ]);
  });

  it('words a number out of range (1e400 parses as Infinity) without "a Infinity"', () => {
    const error = z.strictObject({ copies: z.number() }).safeParse({ copies: JSON.parse('1e400') }).error!;
    expect(validationProblem('json', error).init.extra?.errors).toEqual([
      { field: 'body.copies', message: 'must be a number, not infinite (out of range)' },
    ]);
  });

  it('stays small whatever the request holds: the first fields, each name cut, and how many more', () => {
    // 1,500 unknown query parameters once made a 400 of 115 KB
    const query = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`p${i}`, '1']));
    query['x'.repeat(5000)] = '1';
    const error = z.strictObject({}).safeParse(query).error!;
    const problem = validationProblem('query', error).init;
    const errors = problem.extra?.errors as { field: string }[];
    expect(errors).toHaveLength(MAX_LISTED);
    expect(errors[0]).toEqual({ field: 'query.p0', message: 'unknown field' });
    expect(problem.detail).toMatch(/; and 1481 more invalid fields$/);
    expect(JSON.stringify(problem).length).toBeLessThan(2000);
    const long = z.strictObject({}).safeParse({ ['é'.repeat(300)]: 1 }).error!;
    const field = (validationProblem('query', long).init.extra?.errors as { field: string }[])[0]!.field;
    expect(field).toBe(`query.${'é'.repeat(94)}…`);
  });

  it("words a length or range bound for people, keeping a schema's own message", () => {
    const schema = z.strictObject({
      cursor: z.string().min(1).max(200),
      empty: z.string().min(1),
      short: z.string().min(8),
      copies: z.number().min(0).max(100_000),
      few: z.number().min(1),
      under: z.number().lt(10),
      own: z.string().max(3, 'three at most'),
      id: z.string().length(26),
    });
    const error = schema.safeParse({
      cursor: 'a'.repeat(201),
      empty: '',
      short: 'abc',
      copies: 100_001,
      few: 0,
      under: 10,
      own: 'abcd',
      id: 'short',
    }).error!;
    expect(validationProblem('query', error).init.extra?.errors).toEqual([
      // before: "Too big: expected string to have <=200 characters" (an outside check)
      { field: 'query.cursor', message: 'must be at most 200 characters' },
      { field: 'query.empty', message: 'must not be empty' },
      { field: 'query.short', message: 'must be at least 8 characters' },
      { field: 'query.copies', message: 'must be at most 100000' },
      { field: 'query.few', message: 'must be at least 1' },
      { field: 'query.under', message: 'must be less than 10' },
      { field: 'query.own', message: 'three at most' },
      { field: 'query.id', message: 'must be exactly 26 characters' },
    ]);
  });
});
