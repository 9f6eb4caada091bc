/**
 * A whole number typed on the command line (an option value, the weight after `@`): digits only,
 * blanks around them ignored, no sign, no fraction, no exponent ("1e3"), within [min, max].
 * undefined when the text is not one: the caller words the user error, naming its option.
 */
export function wholeNumber(text: string, min: number, max: number): number | undefined {
  const trimmed = text.trim();
  if (!/^\d{1,15}$/.test(trimmed)) return undefined;
  const n = Number(trimmed);
  return n >= min && n <= max ? n : undefined;
}
