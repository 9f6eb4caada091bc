import { describe, expect, it } from 'vitest';
import { oneLine, terminalSafe } from './terminal-safe.js';

describe('terminalSafe', () => {
  it('escapes what a terminal acts on, keeps newlines, tabs and any printable script', () => {
    expect(terminalSafe('clx-k\x1b[31mX')).toBe('clx-k\\u001b[31mX');
    expect(terminalSafe('a\rb\x07c\x7fd\x9be')).toBe('a\\u000db\\u0007c\\u007fd\\u009be');
    expect(terminalSafe('gnp\u202e.exe \u2028 \u200e')).toBe('gnp\\u202e.exe \\u2028 \\u200e');
    expect(terminalSafe('line 1\n\tline 2 ليلى 👩\u200d💻 é')).toBe('line 1\n\tline 2 ليلى 👩\u200d💻 é');
  });

  it('keeps a JSON document valid and its values as they were', () => {
    const value = { id: 'a\x1b\x9b\u202e\u2028z', n: 1 };
    const text = terminalSafe(JSON.stringify(value, null, 2));
    expect(/[\p{Cc}\u202e\u2028]/u.test(text.replace(/[\n\t]/g, ''))).toBe(false);
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('oneLine', () => {
  it('also writes a newline and a tab as escapes: one value never makes a second line or column', () => {
    expect(oneLine('t-q\nt-forged   shard-2  suspended')).toBe('t-q\\u000at-forged   shard-2  suspended');
    expect(oneLine('a\tb\x1b[31m\r\u2028')).toBe('a\\u0009b\\u001b[31m\\u000d\\u2028');
    expect(oneLine('ليلى 👩\u200d💻 é')).toBe('ليلى 👩\u200d💻 é');
  });
});
