/**
 * Zod/OpenAPI schemas shared by the library routes, and the JSON views of the domain records.
 * Every object a client sends is `.strict()` (unknown fields → 400), every string is bounded,
 * every id is pattern-checked.
 */
import { z } from '@hono/zod-openapi';
import { ID_PATTERN } from '../config/schema.js';
import { isbnCheckDigitValid, isbnPrefixValid } from '../domain/isbn.js';
import type { Book, Loan, Member } from '../domain/models.js';
import { LONE_SURROGATE, LONE_SURROGATE_MESSAGE, withoutHiddenText } from '../domain/visible-text.js';
import { PROBLEM_CODES, type ProblemCode } from './problem-codes.js';

/**
 * An id a client sends. Ids are opaque (CONTRACT.md §6): any bounded string is taken, and one
 * that is not an id of ours finds nothing (404), like an id of another tenant.
 */
export const idSchema = z
  .string()
  .min(1)
  .max(64)
  .openapi({ example: '01JD5X8Q9W6ZV1N2M3K4H5G6F7', description: 'an opaque id' });

/** an instant as `Date#toISOString` writes it: ISO 8601 in UTC, milliseconds included */
export const dateTime = z.string().openapi({ format: 'date-time', example: '2025-01-31T09:30:00.000Z' });

/**
 * The `security` of a public route that checks a Bearer token when one is sent (401, 403): none
 * needed, or the member token
 */
export const optionalBearer: { [scheme: string]: string[] }[] = [{}, { bearerAuth: [] }];

export const tenantHeaders = z.object({
  'x-tenant-id': z
    .string()
    .regex(ID_PATTERN)
    .openapi({ description: 'the tenant (X-Tenant-ID)', example: 'acme' }),
});

export const idParams = z.strictObject({
  id: idSchema.openapi({ param: { name: 'id', in: 'path' } }),
});

export const problemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string().openapi({
      description: 'stable and machine-readable; each response lists the ones it can carry',
    }),
    requestId: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

/** a problem answer's content, any code (the /v1 operations list theirs: `problems`) */
export const problemContent = { 'application/problem+json': { schema: problemSchema } };

/** where a problem response keeps its codes, for documentV1Responses to add to them */
export const PROBLEM_CODES_OF: unique symbol = Symbol('problem codes');

/** codes of one status, each with what the route says of it (else the table's meaning) */
export type CodeList = readonly (readonly [ProblemCode, string | undefined])[];

/** A status's problem response: `code` limited to its codes, each named in the description. */
export interface ProblemResponse {
  description: string;
  content: { 'application/problem+json': { schema: z.ZodType } };
  [PROBLEM_CODES_OF]: CodeList;
}

/** the response of one status answering `codes` (all of that status in PROBLEM_CODES) */
export function problemResponse(codes: CodeList): ProblemResponse {
  const names = codes.map(([code]) => code) as [ProblemCode, ...ProblemCode[]];
  return {
    description: codes
      .map(([code, note]) => `\`${code}\`: ${note ?? PROBLEM_CODES[code].meaning}`)
      .join('; '),
    content: {
      'application/problem+json': { schema: problemSchema.and(z.object({ code: z.enum(names) })) },
    },
    [PROBLEM_CODES_OF]: codes,
  };
}

/**
 * The error responses of a route's own problem codes, by the status PROBLEM_CODES gives each: a
 * code, or codes with what this route says of them (`{ too_many_login_attempts: '…' }`).
 * documentV1Responses adds the codes every route of its kind answers (the tenant, the token,
 * the body, a write's key, the dependencies).
 */
export function problems(...entries: (ProblemCode | Partial<Record<ProblemCode, string>>)[]) {
  const byStatus = new Map<number, [ProblemCode, string | undefined][]>();
  const pairs = entries.flatMap((entry): [ProblemCode, string | undefined][] =>
    typeof entry === 'string' ? [[entry, undefined]] : (Object.entries(entry) as [ProblemCode, string][]),
  );
  for (const [code, note] of pairs) {
    const status = PROBLEM_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), [code, note]]);
  }
  return Object.fromEntries(
    [...byStatus].map(([status, codes]) => [status, problemResponse(codes)]),
  ) as Record<number, ProblemResponse>;
}

/**
 * C0/C1 control characters (NUL, newline, ESC, …) and the Unicode line and paragraph separators
 * (U+2028, U+2029): never part of a one-line name, title or author
 */
const CONTROL = /[\p{Cc}\p{Zl}\p{Zp}]/u;
/**
 * something a reader sees: a character that is not a space, an invisible format character (U+200B,
 * U+200E, …), a combining mark on its own (U+034F, variation selectors, U+17B4), a Hangul filler
 * (U+115F, U+1160, U+3164, U+FFA0) or the blank Braille pattern (U+2800)
 */
const VISIBLE = /[^\p{Z}\p{Cf}\p{M}\s\u115F\u1160\u3164\uFFA0\u2800]/u;
/** U+FFFE, U+FFFF, U+FDD0–U+FDEF and the like: never characters, whatever renders them */
const NONCHARACTER = /\p{Noncharacter_Code_Point}/u;

/**
 * Blanks at either end: spaces of any width (Unicode's space separators: U+0020, U+00A0, U+3000,
 * …) and tabs. Not String#trim's set, which also drops line breaks, U+2028, U+2029 and U+FEFF
 * there, so `"Ann\u2028"` was stored as `Ann` though such a character is a 400 anywhere else in
 * the value (an outside check).
 */
const EDGE_BLANKS = /^[\p{Zs}\t]+|[\p{Zs}\t]+$/gu;
export const trimBlanks = (s: string) => s.replace(EDGE_BLANKS, '');

/** a one-line text field: trimmed of blanks, 1..max characters, printable, well-formed Unicode */
function text(max: number) {
  return withoutHiddenText(
    z
      .string()
      .overwrite(trimBlanks)
      .min(1)
      .max(max)
      .refine((s) => !LONE_SURROGATE.test(s), LONE_SURROGATE_MESSAGE)
      .refine((s) => !CONTROL.test(s), 'must not contain control characters or line breaks'),
  )
    .refine((s) => !NONCHARACTER.test(s), 'must not contain Unicode noncharacters (U+FFFE, U+FFFF, …)')
    .refine((s) => VISIBLE.test(s), 'must contain a visible character');
}

/**
 * RFC 5322 §3.2.3 `atext`: what a local part holds unquoted. A local part is a dot-atom of it (no
 * "." first, last or twice); a quoted one (`"a b"@…`) is not taken. zod's own email pattern takes
 * only letters, digits and `_'+-.`, so `o&co@example.com` or `a/b@example.com` was refused (400)
 * though RFC 5322 and SMTP take them (an outside check); every character added is plain in a
 * header and on the SMTP envelope (no quoting, none is a separator). The domain part is zod's.
 */
const ATEXT = "A-Za-z0-9!#$%&'*+/=?^_`{|}~-";
const ADDRESS = new RegExp(`^[${ATEXT}]+(?:\\.[${ATEXT}]+)*@(?:[A-Za-z0-9][A-Za-z0-9-]*\\.)+[A-Za-z]{2,}$`);
const address = z.email({ pattern: ADDRESS });
/** A login's address: any such address up to 254 (RFC 5321's path less its brackets). */
export const email = address.max(254);
/** a domain name's label (RFC 1035 §2.3.1): letters, digits and inner hyphens, 1–63 characters */
const DOMAIN_LABEL = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;
/**
 * An address a member registers with, one the mail path delivers: RFC 5321 limits the local
 * part to 64 characters and the whole path to 256 octets with its brackets, which SMTP servers
 * take as at most 253 characters for the address (smtp-server does); every label of the domain
 * is a host name's. Before, `x@example-.com` and a 254-character address were registered (201)
 * and their welcome mail refused by the SMTP server (501) and dead-lettered, an outside check.
 * A login takes any address up to 254 (`email`): an account made before still logs in.
 */
const newEmail = address
  // its own limit alone: on `email`'s, a 255-character address was told "at most 254" (an outside check)
  .max(253)
  .refine((s) => s.indexOf('@') <= 64, 'the part before "@" must be at most 64 characters')
  .refine(
    (s) =>
      s
        .slice(s.lastIndexOf('@') + 1)
        .split('.')
        .every((label) => DOMAIN_LABEL.test(label)),
    'every part of the domain must be 1–63 letters, digits or inner hyphens (no "-" at either end)',
  );
/**
 * A new password (registration, change): 8–128 characters (at least 8 in code points as typed and
 * once normalized to NFKC, as it is hashed; at most 128 as sent), any printable Unicode including
 * spaces (OWASP ASVS 2.1), but no control characters (NUL, newline, …: no keyboard types them,
 * and some clients cut a string at NUL) and not only spaces. A login takes any string up to 128,
 * so an older password is never locked out by a rule added later.
 */
export const password = z
  .string()
  .max(128, 'must be at most 128 characters')
  // counted as it is hashed (normalizing-hasher.ts): "e" + U+0301 four times is 8 code units
  // typed but the 4 characters "éééé" hashed, and was taken (an outside check)
  // in code points: an emoji is one character, not two UTF-16 units ("😀" × 4 was taken)
  // both as typed and as hashed: NFKC also makes some characters longer ("\ufdfa" is 18, and
  // one character was taken — a review)
  .refine((s) => [...s].length >= 8 && [...s.normalize('NFKC')].length >= 8, 'must be at least 8 characters')
  .refine((s) => !LONE_SURROGATE.test(s), LONE_SURROGATE_MESSAGE)
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters')
  .refine((s) => VISIBLE.test(s), 'must not be only spaces or invisible characters')
  .openapi({
    minLength: 8,
    description:
      '8–128 characters (at least 8 as typed and once normalized to NFKC, as it is hashed), any printable Unicode including spaces; no control characters, not only spaces',
  });
const personName = text(200);

export const memberSchema = z
  .object({
    id: idSchema,
    email: z.string(),
    name: z.string(),
    role: z.enum(['librarian', 'member']),
    createdAt: dateTime,
  })
  .openapi('Member');

export function memberJson(m: Member): z.infer<typeof memberSchema> {
  return { id: m.id, email: m.email, name: m.name, role: m.role, createdAt: m.createdAt.toISOString() };
}

export const registerBody = z
  .strictObject({ email: newEmail, name: personName, password })
  .openapi('RegisterMember');

const ISBN_FORMAT = /^(?:\d[- ]?){9}[\dXx]$|^(?:\d[- ]?){12}\d$/;
const isbn = z
  .string()
  .regex(ISBN_FORMAT, 'must be an ISBN-10 or ISBN-13')
  .max(17)
  // a typo in one digit fails the check digit: say so instead of storing it (once the format is right)
  .refine(
    (v) => !ISBN_FORMAT.test(v) || isbnCheckDigitValid(v),
    'the check digit does not match (a mistyped digit?)',
  )
  .refine((v) => !ISBN_FORMAT.test(v) || isbnPrefixValid(v), 'an ISBN-13 starts with 978 or 979')
  .openapi({
    description:
      'an ISBN-10 or ISBN-13 (digits, optionally separated by single hyphens or spaces, at most 17 characters in all) whose check digit matches; an ISBN-13 starts with 978 or 979; kept as sent, not unique',
    example: '978-0-13-468599-1',
  });
const title = text(300);
const author = text(200);
// the range first, and the first failure only: `int()` also checks the safe-integer range, and
// 2^53 copies was told "expected int to be <=9007199254740991" (an outside check)
const copies = z.number().min(0, { abort: true }).max(100_000, { abort: true }).int();

export const bookBody = z.strictObject({ isbn, title, author, copies }).openapi('NewBook');
export const bookPatchBody = z
  .strictObject({
    isbn: isbn.optional(),
    title: title.optional(),
    author: author.optional(),
    copies: copies.optional(),
  })
  .refine((b) => Object.keys(b).length > 0, { message: 'at least one of isbn, title, author, copies' })
  .openapi('BookPatch', { minProperties: 1 });

export const bookSchema = z
  .object({
    id: idSchema,
    isbn: z.string(),
    title: z.string(),
    author: z.string(),
    copies: z.number().int(),
    available: z.number().int(),
    createdAt: dateTime,
    updatedAt: dateTime,
  })
  .openapi('Book');

export function bookJson(b: Book): z.infer<typeof bookSchema> {
  return {
    id: b.id,
    isbn: b.isbn,
    title: b.title,
    author: b.author,
    copies: b.copies,
    available: b.available,
    createdAt: b.createdAt.toISOString(),
    updatedAt: b.updatedAt.toISOString(),
  };
}

export const loanSchema = z
  .object({
    id: idSchema,
    bookId: idSchema,
    memberId: idSchema,
    status: z.enum(['active', 'returned']),
    borrowedAt: dateTime,
    returnedAt: dateTime.nullable(),
  })
  .openapi('Loan');

export function loanJson(l: Loan): z.infer<typeof loanSchema> {
  return {
    id: l.id,
    bookId: l.bookId,
    memberId: l.memberId,
    status: l.returnedAt === null ? 'active' : 'returned',
    borrowedAt: l.borrowedAt.toISOString(),
    returnedAt: l.returnedAt === null ? null : l.returnedAt.toISOString(),
  };
}

/** `limit` (1–100, default 20) and an opaque `cursor`, as query strings */
/**
 * An optional query parameter sent empty (`?cursor=&limit=`, as CONTRACT.md §6 writes the list
 * route, or blank) is one not sent: a client that fills a URL template with nothing for "none"
 * gets the default, not a 400 (an outside check got 400 for the contract's own example).
 */
export function absentWhenEmpty<T extends z.ZodType>(schema: T) {
  return z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());
}

export const pageQuery = {
  cursor: absentWhenEmpty(z.string().min(1).max(200)),
  // a string at run time (it is one in the URL), an integer 1–100 to a reader of the document
  limit: absentWhenEmpty(
    z
      .string()
      .regex(/^\d{1,3}$/, 'must be an integer 1–100')
      .openapi({ type: 'integer', minimum: 1, maximum: 100, default: 20, example: 20, pattern: undefined }),
  ),
};

/** the number of a validated `limit` query string, or a 400 naming it */
export function pageLimit(limit: string | undefined): number | string {
  if (limit === undefined) return 20;
  const n = Number(limit);
  return n >= 1 && n <= 100 ? n : 'must be an integer 1–100';
}

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true as const,
  content: { 'application/json': { schema } },
});

export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export { author as authorQuery };
