import { describe, expect, it } from 'vitest';
import { isNoBody } from './no-body.js';

describe('isNoBody', () => {
  it('takes an empty body, white space and {} with white space around its braces as none', () => {
    for (const text of ['', ' ', '\r\n\t', '{}', ' { } ', '\n{\n}\n', '\u00a0{}\ufeff'])
      expect(isNoBody(text), JSON.stringify(text)).toBe(true);
    for (const text of ['x', ' x', '{ }x', '{"a":1}', '[]', 'null', '{}{}', '{ } }', '""'])
      expect(isNoBody(text), JSON.stringify(text)).toBe(false);
  });

  it('is linear in a long run of spaces followed by something else (it was quadratic)', () => {
    // a generous bound: the quadratic expression took 1.1 s on 50,000 spaces (so about 17 s here); this ~1 ms
    const started = performance.now();
    expect(isNoBody(`${' '.repeat(200_000)}x`)).toBe(false);
    expect(isNoBody(`{${' '.repeat(200_000)}x`)).toBe(false);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
