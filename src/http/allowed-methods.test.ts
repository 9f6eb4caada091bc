import { describe, expect, it } from 'vitest';
import { allowedMethods } from './allowed-methods.js';

describe('allowedMethods', () => {
  const allowed = allowedMethods([
    { method: 'ALL', path: '/v1/*' },
    { method: 'GET', path: '/v1/books' },
    { method: 'POST', path: '/v1/books' },
    { method: 'GET', path: '/v1/books/:id' },
    { method: 'PATCH', path: '/v1/books/:id' },
    { method: 'POST', path: '/v1/loans/:id/return' },
    { method: 'GET', path: '/*' },
  ]);

  it('lists the methods of every route whose pattern matches, HEAD with GET, OPTIONS, middleware left out', () => {
    expect(allowed('/v1/books')).toEqual(['GET', 'HEAD', 'OPTIONS', 'POST']);
    expect(allowed('/v1/books/01ABC')).toEqual(['GET', 'HEAD', 'OPTIONS', 'PATCH']);
    expect(allowed('/v1/loans/x/return')).toEqual(['OPTIONS', 'POST']);
  });

  it('finds nothing for a path no route names, nor across a slash', () => {
    expect(allowed('/v1/nothing')).toEqual([]);
    expect(allowed('/v1/books/a/b')).toEqual([]);
    expect(allowed('/v1/loans/x/y/return')).toEqual([]);
  });

  it('does not take a path with a trailing slash for the route without one (the router does not)', () => {
    expect(allowed('/v1/books/')).toEqual([]);
    expect(allowed('/v1/books/01ABC/')).toEqual([]);
  });
});
