/**
 * A request body's bytes as text: UTF-8 with a leading BOM dropped, as the Fetch API's `text()`
 * reads it, except that bytes that are not UTF-8 answer undefined instead of turning into U+FFFD
 * (which would be stored and mailed as such). Runtime-neutral (TextDecoder); not streaming, so
 * one decoder serves every call.
 */
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function utf8Text(bytes: Uint8Array | ArrayBuffer): string | undefined {
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}
