/**
 * The text of a config value as etcd holds it (bytes). Valid UTF-8 decodes as is, a BOM and any
 * U+FFFD it spells included. Bytes that are not UTF-8 (CONTRACT.md §4) decode leniently with
 * every substituted character, and any U+FFFD, turned into the lone surrogate U+DCFD: no decoding
 * of valid UTF-8 can yield a lone surrogate, so `parseConfigKey` refuses exactly these values
 * (`isNotUtf8`) and still shows where the bad bytes were. Runtime-neutral (TextDecoder).
 */
const strict = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
const lenient = new TextDecoder('utf-8', { ignoreBOM: true });

export const NOT_UTF8_MARK = '\uDCFD';

export function configValueText(bytes: Uint8Array): string {
  try {
    return strict.decode(bytes);
  } catch {
    return lenient.decode(bytes).replaceAll('\uFFFD', NOT_UTF8_MARK);
  }
}

/** true for text `configValueText` made from bytes that are not UTF-8 (it holds a lone surrogate) */
export function isNotUtf8(text: string): boolean {
  return /\p{Cs}/u.test(text);
}
