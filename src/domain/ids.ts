/**
 * Opaque ids: ULID-shaped (26 Crockford base32 characters: 48-bit millisecond time + 80 random
 * bits), generated in the app with Web Crypto so this file stays runtime-neutral. Ids sort by
 * creation time, which keeps InnoDB inserts append-mostly and lets cursors page in creation order.
 *
 * Written by hand (25 lines) rather than with the `ulid` package: its Node build imports
 * node:crypto through the `node` export condition, which the runtime-neutral core must not pull in.
 * Two ids made in the same millisecond are unique (80 random bits) but not ordered between them.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

export const ID_LENGTH = 26;
export const ID_REGEX = /^[0-9A-HJKMNP-TV-Z]{26}$/;

export function newId(now: number = Date.now()): string {
  let time = '';
  let t = Math.floor(now);
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  let random = '';
  for (let i = 0; i < 16; i++) random += ALPHABET[bytes[i]! % 32];
  return time + random;
}

export function isId(value: string): boolean {
  return ID_REGEX.test(value);
}

/** the creation time (ms since the epoch) of an id made by `newId`; undefined for any other string */
export function idTime(id: string): number | undefined {
  if (!ID_REGEX.test(id)) return undefined;
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + ALPHABET.indexOf(id[i]!);
  return t;
}

/**
 * The smallest id `newId` can make at `ms`: every id made before `ms` sorts below it, byte by
 * byte (the alphabet is in ASCII order; the columns holding ids use a binary collation).
 */
export function idFloor(ms: number): string {
  return newId(ms).slice(0, 10) + '0'.repeat(16);
}
