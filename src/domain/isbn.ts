/**
 * ISBN check digits (ISO 2108): an ISBN-10's digits weighted 10…1 sum to a multiple of 11 (`X`
 * or `x` is 10, last place only); an ISBN-13's digits weighted 1, 3, 1, 3, … sum to a multiple of 10.
 * Hyphens and spaces between digits are ignored here and kept as the client sent them.
 */
export function isbnCheckDigitValid(isbn: string): boolean {
  // `x` as typed is the check digit X
  const chars = isbn.replace(/[- ]/g, '').toUpperCase();
  if (/^\d{9}[\dX]$/.test(chars)) {
    let sum = 0;
    for (let i = 0; i < 10; i++) sum += (10 - i) * (chars[i] === 'X' ? 10 : Number(chars[i]));
    return sum % 11 === 0;
  }
  if (/^\d{13}$/.test(chars)) {
    let sum = 0;
    for (let i = 0; i < 13; i++) sum += Number(chars[i]) * (i % 2 === 0 ? 1 : 3);
    return sum % 10 === 0;
  }
  return false;
}

/**
 * An ISBN-13 is an EAN-13 of the "Bookland" prefixes (ISO 2108): it starts with 978 or 979.
 * Another 13-digit number with a right check digit is a product barcode, not a book's number.
 */
export function isbnPrefixValid(isbn: string): boolean {
  const digits = isbn.replace(/[- ]/g, '');
  return digits.length !== 13 || digits.startsWith('978') || digits.startsWith('979');
}
