import { describe, expect, it } from 'vitest';
import { isbnCheckDigitValid, isbnPrefixValid } from './isbn.js';

describe('isbnCheckDigitValid', () => {
  it('accepts ISBN-10 and ISBN-13 with the right check digit, with or without separators', () => {
    for (const ok of [
      '0306406152',
      '0-306-40615-2',
      '080442957X',
      '080442957x',
      '9780306406157',
      '978-0-13-468599-1',
      '978 0 306 40615 7',
    ])
      expect(isbnCheckDigitValid(ok), ok).toBe(true);
  });

  it('refuses a wrong check digit, X outside the last place of an ISBN-10, and other lengths', () => {
    for (const bad of [
      '0306406151',
      '9780306406158',
      '030640615X',
      'X306406152',
      '978030640615X',
      '97803064061',
      '',
    ])
      expect(isbnCheckDigitValid(bad), bad).toBe(false);
  });
});

describe('isbnPrefixValid', () => {
  it('an ISBN-13 starts with 978 or 979; an ISBN-10 has no prefix', () => {
    for (const ok of ['9780306406157', '979-10-90636-07-1', '0306406152'])
      expect(isbnPrefixValid(ok), ok).toBe(true);
    // right check digits, but product barcodes (an outside check stored them as books)
    for (const bad of ['1234567890128', '0000000000000', '977-1234-5678-90'])
      expect(isbnPrefixValid(bad), bad).toBe(false);
  });
});
