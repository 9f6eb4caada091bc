/**
 * The four emails (welcome, password changed, loan receipt, return receipt) as plain text and
 * HTML, naming the tenant's library: one payload schema per kind of OUTBOX_KINDS
 * (domain/models.ts), which `satisfies` checks. Every interpolated value is HTML-escaped in the
 * HTML part. A payload missing what its kind needs throws `InvalidMailError`: the consumer retries
 * it and dead-letters it after the configured attempts (a poison message never blocks the others).
 */
import { z } from 'zod';
import type { OutboxKind } from '../domain/models.js';

export class InvalidMailError extends Error {}

export interface RenderedMail {
  subject: string;
  text: string;
  html: string;
}

const base = z.object({ tenantName: z.string().min(1).max(200), name: z.string().min(1).max(200) });
const loan = base.extend({
  title: z.string().nullable().optional(),
  author: z.string().nullable().optional(),
  borrowedAt: z.string(),
});
const schemas = {
  welcome: base,
  password_changed: base.extend({ changedAt: z.string() }),
  loan_receipt: loan,
  return_receipt: loan.extend({ returnedAt: z.string() }),
} as const satisfies Record<OutboxKind, z.ZodType>;

export function escapeHtml(s: string): string {
  return s.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!,
  );
}

function html(title: string, paragraphs: string[], library: string): string {
  return `<!doctype html><html><body><h1>${escapeHtml(title)}</h1>${paragraphs
    .map((p) => `<p>${escapeHtml(p)}</p>`)
    .join('')}<p>— ${escapeHtml(library)}</p></body></html>`;
}

function compose(subject: string, lines: string[], library: string): RenderedMail {
  return { subject, text: `${lines.join('\n\n')}\n\n— ${library}\n`, html: html(subject, lines, library) };
}

export function renderMail(kind: string, payload: Record<string, unknown>): RenderedMail {
  if (!(kind in schemas)) throw new InvalidMailError(`unknown mail kind "${kind}"`);
  const r = schemas[kind as keyof typeof schemas].safeParse(payload);
  if (!r.success)
    throw new InvalidMailError(`invalid ${kind} payload: ${r.error.issues[0]?.message ?? 'invalid'}`);
  const p = r.data as Record<string, string | null | undefined> & { tenantName: string; name: string };
  const lib = p.tenantName;
  const book = p.title ? `"${p.title}"${p.author ? ` by ${p.author}` : ''}` : 'your book';
  switch (kind) {
    case 'welcome':
      return compose(`Welcome to ${lib}`, [`Hello ${p.name},`, `your membership of ${lib} is ready.`], lib);
    case 'password_changed':
      return compose(
        `Your ${lib} password was changed`,
        [
          `Hello ${p.name},`,
          `the password of your ${lib} account was changed at ${p.changedAt}.`,
          'If this was not you, contact your librarian.',
        ],
        lib,
      );
    case 'loan_receipt':
      return compose(
        `You borrowed ${book}`,
        [`Hello ${p.name},`, `you borrowed ${book} from ${lib} on ${p.borrowedAt}.`],
        lib,
      );
    default:
      return compose(
        `You returned ${book}`,
        [`Hello ${p.name},`, `you returned ${book} to ${lib} on ${p.returnedAt}. Thank you.`],
        lib,
      );
  }
}
