import { describe, expect, it } from 'vitest';
import { settingNumber } from './setting-number.js';

const KEYS = ['breakers/redis/failure_threshold', 'lb/weights/ca-x'];

describe('settingNumber', () => {
  it('takes digits (blanks around them) and answers the canonical form', () => {
    for (const key of KEYS) {
      expect(settingNumber(key, '7')).toEqual({ ok: true, value: 7, text: '7' });
      expect(settingNumber(key, ' 7 \n')).toEqual({ ok: true, value: 7, text: '7' });
    }
  });

  it('refuses a leading zero, as the instances do, naming it', () => {
    for (const key of KEYS)
      for (const text of ['007', '010', '00']) {
        const r = settingNumber(key, text);
        expect(r.ok, `${key} ${text}`).toBe(false);
        expect(r.ok ? '' : r.reason).toContain('leading zero');
      }
  });

  it('refuses a fraction (7.0 too: these settings are whole numbers), a sign, out of range, not a number', () => {
    for (const key of KEYS)
      for (const text of ['7.0', '7.5', '-0', '+7', '1e3', '0x10', '', 'abc', '9'.repeat(1000)])
        expect(settingNumber(key, text).ok, `${key} ${text.slice(0, 20)}`).toBe(false);
    expect(settingNumber('lb/weights/ca-x', '257').ok).toBe(false);
    expect(settingNumber('breakers/redis/failure_threshold', '0').ok).toBe(false);
    const fraction = settingNumber('breakers/redis/failure_threshold', '7.0');
    expect(fraction.ok ? '' : fraction.reason).toContain('whole number');
  });
});
