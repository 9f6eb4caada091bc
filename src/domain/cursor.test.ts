import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, listScope } from './cursor.js';
import { isId, newId } from './ids.js';

describe('cursors', () => {
  const scope = listScope.books('acme', undefined);

  it('round-trip an id within their list, and are URL-safe', () => {
    const id = newId();
    const cursor = encodeCursor(id, scope);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor, scope)).toEqual({ ok: true, id });
    // the author filter matches ignoring case and surrounding blanks: so does the scope
    const bob = listScope.books('acme', 'Bob');
    expect(decodeCursor(encodeCursor(id, bob), listScope.books('acme', ' bob '))).toEqual({ ok: true, id });
  });

  it('refuse a cursor of another list, tenant, filter or member, saying so', () => {
    const cursor = encodeCursor(newId(), scope);
    for (const other of [
      listScope.books('globex', undefined),
      listScope.books('acme', 'Bob'),
      listScope.loans('acme', newId()),
    ])
      expect(decodeCursor(cursor, other)).toEqual({
        ok: false,
        reason: 'a cursor of another list or filter: start again without it',
      });
    const loans = listScope.loans('acme', newId());
    expect(decodeCursor(encodeCursor(newId(), loans), listScope.loans('acme', newId())).ok).toBe(false);
  });

  it('take a cursor made before scopes existed ({"id"} only)', () => {
    const id = newId();
    expect(decodeCursor(btoa(`{"id":"${id}"}`).replace(/=+$/, ''), scope)).toEqual({ ok: true, id });
  });

  it('reject anything else', () => {
    const bad = [
      '',
      '***',
      'a'.repeat(300),
      btoa('not json'),
      btoa('[1]'),
      btoa('{"id":"short"}'),
      btoa(`{"id":"${newId()}","x":1}`),
      btoa(`{"id":"${newId()}","s":5}`),
      btoa('{"id":5}'),
    ];
    for (const c of bad)
      expect(decodeCursor(c.replace(/=+$/, ''), scope)).toEqual({
        ok: false,
        reason: 'not a cursor of this API',
      });
  });
});

describe('ids', () => {
  it('are 26 Crockford base32 characters that sort by time', () => {
    const a = newId(1_700_000_000_000);
    const b = newId(1_700_000_000_001);
    expect(isId(a)).toBe(true);
    expect(a < b).toBe(true);
    expect(new Set(Array.from({ length: 1000 }, () => newId())).size).toBe(1000);
  });
});
