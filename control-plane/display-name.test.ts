import { describe, expect, it } from 'vitest';
import { tenantSchema } from '../src/config/schema.js';
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
      ['Caf\u200ee', 'U+200E at character 4'],
      ['ab\u061c', 'U+061C at character 3'],
    ] as const) {
      expect(() => checkDisplayName(name, '--name')).toThrow(UserError);
      expect(() => checkDisplayName(name, '--name')).toThrow(culprit);
    }
  });
});

describe('checkDisplayName counts as the schema counts', () => {
  it('counts characters (code points), not UTF-16 units: 200 emoji pass, 201 do not, as the instances judge them', () => {
    // an outside check: 150 emoji were refused as "got 300", while the instances take 200
    const schema = tenantSchema.shape.name.unwrap();
    for (const [name, valid] of [
      ['😀'.repeat(150), true],
      ['😀'.repeat(200), true],
      ['😀'.repeat(201), false],
      [`${'x'.repeat(199)}😀`, true],
    ] as const) {
      expect(schema.safeParse(name).success, name).toBe(valid);
      if (valid) expect(checkDisplayName(name, '--name')).toBe(name);
      else expect(() => checkDisplayName(name, '--name')).toThrow('--name must be 1–200 characters, got 201');
    }
    // a culprit's position in characters too
    expect(() => checkDisplayName('😀😀\nx', '--name')).toThrow('U+000A at character 3');
  });
});

describe('checkDisplayName and the schema', () => {
  it('refuses what the instances would reject: stray tags, private use; a subdivision flag passes', () => {
    expect(() => checkDisplayName('ab\u{E0041}', '--name')).toThrow(
      '--name must not contain tag characters (U+E0000–U+E007F) outside an emoji flag',
    );
    expect(() => checkDisplayName('Shop \ue000', '--name')).toThrow(
      '--name must not contain private-use characters',
    );
    expect(() => checkDisplayName('Ann\u200b', '--name')).toThrow(
      '--name must not contain invisible characters (U+00AD, U+034F, U+115F, U+1160, U+17B4, U+17B5, U+180E, U+200B, U+2060–U+206F, U+2800, U+3164, U+FEFF, U+FFA0, U+FFF9–U+FFFB, U+1D173–U+1D17A)',
    );
    const england = 'Leeds \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}';
    expect(checkDisplayName(england, '--name')).toBe(england);
    // a long run of tags between a black flag and a cancel tag is hidden text, not a flag
    const hidden = `\u{1F3F4}${[...'ignoreall'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('')}\u{E007F}`;
    expect(() => checkDisplayName(hidden, '--name')).toThrow('tag characters');
  });
});

describe('checkDisplayName and joiners', () => {
  it('refuses a new name with a joiner that joins nothing; the instances still read such an entry', () => {
    expect(() => checkDisplayName('Acme\u200d', '--name')).toThrow('zero-width joiner or non-joiner');
    expect(() => checkDisplayName('Ac\u200dme', '--name')).toThrow('zero-width joiner or non-joiner');
    expect(checkDisplayName('Acme 👩\u200d💻', '--name')).toBe('Acme 👩\u200d💻');
    // written before the check (an outside review): its tenant must not vanish on an upgrade
    const entry = tenantSchema.safeParse({ shard: 'shard-1', status: 'active', name: 'Acme 👩\u200d' });
    expect(entry.success).toBe(true);
  });
});

describe('printableName', () => {
  it('shows each unprintable character as an escape, so a name is one line of output', () => {
    expect(printableName('a\nb\u2028c')).toBe('a\\u{A}b\\u{2028}c');
    expect(printableName('plain «name»')).toBe('plain «name»');
  });
});
