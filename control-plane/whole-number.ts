/**
 * The text of a whole number as shardgate-ctl takes it, on the command line (`lb weight`,
 * `breakers set`, `--weight`, the weight after `@`) and in a config file (plain-numbers.ts):
 * decimal digits only. No sign, no fraction (`7.0`), no exponent (`1e3`), no base prefix
 * (`0x10`), no digit separator (`1_000`); blanks are not part of it (the command line trims them,
 * a file's scalar has none).
 */
export function isWholeNumberText(text: string): boolean {
  return /^\d+$/.test(text);
}

/**
 * A whole number typed on the command line (an option value, the weight after `@`): digits only,
 * blanks around them ignored, no sign, no fraction, no exponent ("1e3"), no leading zero ("010":
 * the instances refuse it in etcd, and so does a config file, where YAML 1.1 reads it as octal 8;
 * `breakers set` used to store it as 10, an outside check), within [min, max].
 * undefined when the text is not one: the caller words the user error, naming its option.
 */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  const trimmed = text.trim();
  if (!isWholeNumberText(trimmed) || /^0\d/.test(trimmed) || trimmed.length > 15) return undefined;
  const n = Number(trimmed);
  return n >= min && n <= max ? n : undefined;
}
