/**
 * Text a caller sent, made fit to quote in an answer's `detail`: its first `max` characters (code
 * points; longer text ends in `…`; an escape below lengthens its character to at most 10), and
 * every control or format character — CR, LF, NUL, the
 * bidirectional overrides (U+202E) that make text read backwards — written as `\u{…}`, so the
 * quote shows what was sent and can neither run long nor disguise itself. JSON escaping alone
 * keeps the body valid, not the text honest.
 */
const INVISIBLE = /[\p{Cc}\p{Cf}]/gu;

export function echoText(text: string, max = 120): string {
  const chars = Array.from(text);
  const kept = chars.length > max ? `${chars.slice(0, max).join('')}…` : text;
  return kept.replace(INVISIBLE, (ch) => `\\u{${ch.codePointAt(0)!.toString(16).toUpperCase()}}`);
}
