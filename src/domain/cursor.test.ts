import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from './cursor.js';
import { isId, newId } from './ids.js';

describe('cursors', () => {
  it('round-trip an id and are URL-safe', () => {
    const id = newId();
    const cursor = encodeCursor(id);
    expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeCursor(cursor)).toBe(id);
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
      btoa('{"id":5}'),
    ];
    for (const c of bad) expect(decodeCursor(c.replace(/=+$/, ''))).toBeUndefined();
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
