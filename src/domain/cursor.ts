/**
 * Opaque pagination cursors: base64url of `{"id":<last id of the page>,"s":<scope tag>}`.
 * Runtime-neutral (btoa/atob). The scope tag is a 32-bit FNV-1a hash of what the list is (which
 * list, the tenant, the author filter, the member): a cursor handed back to another list or
 * filter is refused instead of silently starting a different walk somewhere in the middle. It
 * is a check against mistakes, not a secret: the rows are scoped to the tenant and member anyway.
 * A cursor without `s` (made before scopes existed) is still taken. `decodeCursor` never throws:
 * anything else comes back as a reason, and the route answers 400 naming `query.cursor`.
 */
import { isId } from './ids.js';

export const MAX_CURSOR_LENGTH = 200;

function toBase64Url(text: string): string {
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64Url(text: string): string | undefined {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) return undefined;
  const padded = text.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (text.length % 4)) % 4);
  try {
    return atob(padded);
  } catch {
    return undefined;
  }
}

/** what a list is, for its cursors: FNV-1a 32-bit of the parts, as 8 hex digits */
function scopeTag(parts: readonly string[]): string {
  let h = 0x811c9dc5;
  const text = parts.join('\n');
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
}

/** the scopes of the API's lists */
export const listScope = {
  /** `GET /v1/books`: the author filter as it matches (case and surrounding blanks ignored) */
  books: (tenantId: string, author: string | undefined): string =>
    scopeTag(['books', tenantId, author?.trim().toLowerCase() ?? '']),
  /** `GET /v1/loans`: the caller's own loans */
  loans: (tenantId: string, memberId: string): string => scopeTag(['loans', tenantId, memberId]),
};

export function encodeCursor(lastId: string, scope: string): string {
  return toBase64Url(JSON.stringify({ id: lastId, s: scope }));
}

export type CursorVerdict = { ok: true; id: string } | { ok: false; reason: string };

const NOT_OURS: CursorVerdict = { ok: false, reason: 'not a cursor of this API' };

export function decodeCursor(cursor: string, scope: string): CursorVerdict {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) return NOT_OURS;
  const json = fromBase64Url(cursor);
  if (json === undefined) return NOT_OURS;
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return NOT_OURS;
    const { id, s, ...rest } = value as { id?: unknown; s?: unknown };
    if (Object.keys(rest).length > 0 || typeof id !== 'string' || !isId(id)) return NOT_OURS;
    if (s === undefined) return { ok: true, id };
    if (typeof s !== 'string') return NOT_OURS;
    if (s !== scope)
      return { ok: false, reason: 'a cursor of another list or filter: start again without it' };
    return { ok: true, id };
  } catch {
    return NOT_OURS;
  }
}
