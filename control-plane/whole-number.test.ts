import { describe, expect, it } from 'vitest';
import { wholeNumber } from './whole-number.js';

describe('wholeNumber', () => {
  it('takes digits within the bounds, blanks around them ignored', () => {
    expect(wholeNumber('0', 0, 256)).toBe(0);
    expect(wholeNumber(' 256 ', 0, 256)).toBe(256);
    expect(wholeNumber('100', 100, 3_600_000)).toBe(100);
  });

  it('refuses anything else: out of bounds, sign, fraction, exponent, hex, leading zero, empty', () => {
    for (const text of [
      '257',
      '-1',
      '+1',
      '1.5',
      '1e3',
      '0x10',
      '010',
      '00',
      ' 007 ',
      '',
      ' ',
      'abc',
      '1 2',
      '9'.repeat(16),
    ])
      expect(wholeNumber(text, 0, 256), JSON.stringify(text)).toBeUndefined();
    expect(wholeNumber('99', 100, 200)).toBeUndefined();
  });
});
