/**
 * Opaque pagination cursors: base64url of `{"id":<last id of the page>}`. Runtime-neutral
 * (btoa/atob). `decodeCursor` never throws: anything that is not a cursor we made (bad base64,
 * bad JSON, extra fields, an id of the wrong shape) comes back undefined and the route answers
 * 400 naming `query.cursor`.
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

export function encodeCursor(lastId: string): string {
  return toBase64Url(JSON.stringify({ id: lastId }));
}

export function decodeCursor(cursor: string): string | undefined {
  if (cursor.length === 0 || cursor.length > MAX_CURSOR_LENGTH) return undefined;
  const json = fromBase64Url(cursor);
  if (json === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
    const keys = Object.keys(value);
    const id = (value as { id?: unknown }).id;
    if (keys.length !== 1 || typeof id !== 'string' || !isId(id)) return undefined;
    return id;
  } catch {
    return undefined;
  }
}
