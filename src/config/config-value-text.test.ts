import { describe, expect, it } from 'vitest';
import { configValueText, isNotUtf8 } from './config-value-text.js';
import { parseConfigKey } from './schema.js';

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p) : Buffer.from(p))));

describe('configValueText', () => {
  it('decodes valid UTF-8 as is, U+FFFD, astral characters and a BOM included', () => {
    for (const text of ['{"a":1}', 'Lib \uFFFD', 'B\u00fccher \u{1F4DA}', '\uFEFF5']) {
      const decoded = configValueText(Buffer.from(text));
      expect(decoded).toBe(text);
      expect(isNotUtf8(decoded)).toBe(false);
    }
  });

  it('marks bytes that are not UTF-8, where they were', () => {
    for (const b of [
      bytes('x', [0xff], 'y'),
      bytes([0xc3]),
      bytes('a', [0xed, 0xa0, 0x80]),
      bytes([0xc0, 0xaf]),
    ]) {
      const decoded = configValueText(b);
      expect(isNotUtf8(decoded)).toBe(true);
      expect(decoded).not.toContain('\uFFFD');
    }
    expect(configValueText(bytes('x', [0xff], 'y'))).toMatch(/^x\p{Cs}y$/u);
  });

  it('parseConfigKey refuses the marked text and takes a value that spells U+FFFD', () => {
    const bad = configValueText(bytes('{"shard":"shard-1","name":"L', [0xff, 0xfe], '"}'));
    expect(parseConfigKey('tenants/t1', bad)).toEqual({
      ok: false,
      reason: 'must be valid UTF-8 (holds bytes that are not)',
    });
    const good = configValueText(Buffer.from('{"shard":"shard-1","name":"L \uFFFD"}'));
    const r = parseConfigKey('tenants/t1', good);
    expect(r.ok && r.parsed.type === 'tenant' && r.parsed.value.name).toBe('L \uFFFD');
  });
});
