import { describe, expect, it } from 'vitest';
import { UserError } from './ctl-errors.js';
import { checkDisplayName, printableName } from './display-name.js';

describe('checkDisplayName', () => {
  it('takes 1–200 characters of printable text, any script', () => {
    for (const name of ['A', 'Bücherei «Nord» 図書館', 'x'.repeat(200), 'with  two spaces'])
      expect(checkDisplayName(name, '--name')).toBe(name);
  });

  it('refuses empty, too long, control characters and U+2028/2029, naming the option and the culprit', () => {
    expect(() => checkDisplayName('', '--name')).toThrow('--name must be 1–200 characters, got 0');
    expect(() => checkDisplayName('x'.repeat(201), '--name')).toThrow('got 201');
    for (const [name, culprit] of [
      ['a\nb', 'U+000A at character 2'],
      ['\rb', 'U+000D at character 1'],
      ['ab\u0085', 'U+0085 at character 3'],
      ['a\u2029', 'U+2029 at character 2'],
      ['\u001b[31mred', 'U+001B at character 1'],
    ] as const) {
      expect(() => checkDisplayName(name, '--name')).toThrow(UserError);
      expect(() => checkDisplayName(name, '--name')).toThrow(culprit);
    }
  });
});

describe('printableName', () => {
  it('shows each unprintable character as an escape, so a name is one line of output', () => {
    expect(printableName('a\nb\u2028c')).toBe('a\\u{A}b\\u{2028}c');
    expect(printableName('plain «name»')).toBe('plain «name»');
  });
});
