/**
 * A number typed for a whole-number key (`breakers set`, `lb weight`; every breaker setting and
 * LB weight is a whole number in the schema): digits only, blanks around them ignored, no
 * leading zero (`007`, as the instances refuse it), no sign, no fraction (`7.0`, `-0` refused, as `--weight` and `@w`
 * refuse them: whole-number.ts), within the key's schema range. Answered with the canonical
 * decimal form written to etcd (`7`); a stored `7.0` put by etcdctl, which the instances reject,
 * is rewritten as `7` (change-plan.ts compares parsed values).
 */
import { parseConfigKey } from '../src/config/schema.js';
import { wholeNumber } from './whole-number.js';

export type SettingNumber = { ok: true; value: number; text: string } | { ok: false; reason: string };

export function settingNumber(key: string, text: string): SettingNumber {
  const n = wholeNumber(text, 0, Number.MAX_SAFE_INTEGER);
  const r = parseConfigKey(key, n === undefined ? text : String(n));
  if (!r.ok) return r;
  const value = r.parsed.type === 'breaker' || r.parsed.type === 'weight' ? r.parsed.value : undefined;
  if (value === undefined) return { ok: false, reason: `${key} is not a whole-number key` };
  // the schema reads "7.0" as 7: the canonical form is digits only
  if (n === undefined)
    return {
      ok: false,
      reason: `must be written as a whole number: digits only (${value}, not ${JSON.stringify(text.trim().slice(0, 40))})`,
    };
  return { ok: true, value, text: String(value) };
}
