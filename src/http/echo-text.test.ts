import { describe, expect, it } from 'vitest';
import { echoText } from './echo-text.js';

describe('echoText', () => {
  it('keeps plain text as it is, accents and emoji included', () => {
    expect(echoText('/v1/bööks/😀')).toBe('/v1/bööks/😀');
  });

  it('writes control and format characters as escapes: CR LF, NUL, a bidi override, a zero-width space', () => {
    expect(echoText('a\r\nX:y\u0000\u202Eb\u200Bc')).toBe('a\\u{D}\\u{A}X:y\\u{0}\\u{202E}b\\u{200B}c');
  });

  it('clips long text to max code points with an ellipsis, never splitting a surrogate pair', () => {
    expect(echoText('p'.repeat(7000))).toBe(`${'p'.repeat(120)}…`);
    expect(echoText('😀'.repeat(5), 3)).toBe('😀😀😀…');
    expect(echoText('abc', 3)).toBe('abc');
  });
});
