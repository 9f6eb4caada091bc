import { describe, expect, it } from 'vitest';
import { parseConfigKey } from './schema.js';

const KEYS = ['lb/weights/api-2', 'breakers/default/failure_threshold', 'cache/ttl_seconds'];

describe('a plain number in etcd', () => {
  it('is decimal digits with blanks etcdctl leaves (space, tab, CR, LF) around them', () => {
    for (const key of KEYS)
      for (const text of ['9', ' 9', '9\n', ' 9\r\n', '\t9 '])
        expect(parseConfigKey(key, text), `${key} ${JSON.stringify(text)}`).toMatchObject({
          ok: true,
          parsed: { value: 9 },
        });
    expect(parseConfigKey('lb/weights/api-2', '0')).toMatchObject({ ok: true, parsed: { value: 0 } });
  });

  it('refuses what the CLI refuses: a sign, a point, an exponent, a leading zero, other blanks', () => {
    // an outside check: `etcdctl put …/lb/weights/api-2 -- -0` drained api-2, `lb weight` refuses it
    for (const key of KEYS)
      for (const text of [
        '-0',
        '+9',
        '9.0',
        '5.0',
        '007',
        '1e1',
        '0x10',
        '\uFEFF9',
        '\u30009',
        '\u00a09',
        '9\u00a0',
        '',
        ' ',
      ])
        expect(parseConfigKey(key, text), `${key} ${JSON.stringify(text)}`).toMatchObject({
          ok: false,
          reason: expect.stringContaining('written as plain decimal digits'),
        });
  });

  it('names the range for a number of any length (309 digits and more read as Infinity)', () => {
    for (const digits of [20, 308, 309, 400])
      expect(parseConfigKey('breakers/redis/call_timeout_ms', '1'.padEnd(digits, '0'))).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/must be a whole number from 1 to 600000$/),
      });
  });

  it('takes true and false with the same blanks only', () => {
    expect(parseConfigKey('cache/enabled', 'false\n')).toMatchObject({ ok: true, parsed: { value: false } });
    expect(parseConfigKey('cache/enabled', '\uFEFFfalse').ok).toBe(false);
  });
});
