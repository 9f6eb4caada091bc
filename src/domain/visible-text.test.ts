import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { withoutHiddenText } from './visible-text.js';

const name = withoutHiddenText(z.string());

describe('withoutHiddenText', () => {
  it('refuses a character that shows as nothing inside a name', () => {
    // `Ann\u3164` was stored and read as `Ann` (an outside check), as were the others after it
    for (const c of [
      '\u200b',
      '\u2062',
      '\u3164',
      '\uffa0',
      '\u115f',
      '\u1160',
      '\u2800',
      '\u034f',
      '\u206a',
      '\u206f',
      '\u2065',
      '\u17b4',
      '\u{1d173}',
      '\ufff9',
    ])
      expect(name.safeParse(`Ann${c}`).success, `U+${c.codePointAt(0)!.toString(16)}`).toBe(false);
  });

  it('takes names of any script, emoji sequences, and the Mongolian variation selectors', () => {
    for (const s of [
      'Ann',
      '김민준',
      'សុខា',
      'ᠮᠣᠩᠭᠣᠯ\u180b',
      'Zoë 👩\u200d👩\u200d👧',
      'می\u200cخواهم',
      'Ана',
      '⠁⠃⠉',
    ])
      expect(name.safeParse(s).success, s).toBe(true);
  });
});

describe('withoutHiddenText: ZWJ and ZWNJ', () => {
  it('refuses a joiner that joins nothing: at either end, next to a blank, or next to another', () => {
    // `Ann\u200d` was stored, and listed as a fourth author "Ann" (an outside check)
    for (const s of [
      'Ann\u200d',
      '\u200cAnn',
      'Ann\u200d\u200d\u200d',
      'An\u200d\u200dn',
      'Ann \u200dLee',
      'Ann\u200c Lee',
      '\u200d',
      // between letters of a script joiners do nothing in (an outside review)
      'An\u200dn',
      'A\u200cnn',
      'Ann\u200d.',
      'Ann\u200d-Lee',
      '(\u200dAnn)',
      '李\u200d明',
    ]) {
      const result = name.safeParse(s);
      expect(result.success, JSON.stringify(s)).toBe(false);
      expect(result.error?.issues[0]?.message).toContain('zero-width joiner or non-joiner');
    }
  });

  it('takes one between two characters it can join', () => {
    for (const s of [
      '👩\u200d💻',
      '👩🏽\u200d💻',
      '🏳️\u200d🌈',
      '🏴\u200d☠️',
      'می\u200cخواهم',
      'مِ\u200cن',
      'क्\u200dष',
      'र\u200d्य',
      'Zoë 👩\u200d👩\u200d👧 Lee',
      // Malayalam chillu letters written the pre-5.1 way, at a word's end (an outside review)
      'ബഷീര്\u200d',
      'മോഹന്\u200dലാല്\u200d',
      'അവന്\u200d വന്നു',
    ])
      expect(name.safeParse(s).success, JSON.stringify(s)).toBe(true);
  });
});
