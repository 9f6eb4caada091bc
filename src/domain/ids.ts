/**
 * Opaque ids: ULID-shaped (26 Crockford base32 characters: 48-bit millisecond time + 80 random
 * bits), generated in the app with Web Crypto so this file stays runtime-neutral. Ids sort by
 * creation time, which keeps InnoDB inserts append-mostly and lets cursors page in creation order.
 *
 * Written by hand rather than with the `ulid` package: its Node build imports
 * node:crypto through the `node` export condition, which the runtime-neutral core must not pull in.
 * Two ids one process makes in the same millisecond are ordered too (monotonic, as ULID's
 * monotonic factory): the second one's random part is the first one's plus one, so books a
 * librarian's script creates within one millisecond list in the order they were made. Ids of two
 * processes in one millisecond are unique (80 random bits) but not ordered between them. A clock
 * that goes back gets fresh random bits at its own time: the time part is always the time given.
 * (Digits that would overflow, all 31, draw fresh ones and lose that order: about 2^-80.) The
 * price, as ULID's: an id tells the next one made in its millisecond; ids are not secrets here
 * (every read checks tenant and member).
 *
 * The random bytes come from a pool refilled 4 KiB at a time (256 ids), each byte used once, as
 * Node's own `crypto.randomUUID` does: one `getRandomValues` call cost about 6 µs of CPU on the
 * 2-core bench host, for 16 bytes as for 4 KiB, and `newId` went from 8.7 to 0.76 µs
 * (bench/ROUNDS.md, thirteenth round). A borrow makes two ids, a return one.
 */
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const RANDOM_PER_ID = 16;
const pool = new Uint8Array(4096);
/** the next unused byte of `pool`; at the end, the pool is refilled first */
let poolOffset = pool.length;

function randomBytesForId(): Uint8Array {
  if (poolOffset + RANDOM_PER_ID > pool.length) {
    crypto.getRandomValues(pool);
    poolOffset = 0;
  }
  const bytes = pool.subarray(poolOffset, poolOffset + RANDOM_PER_ID);
  poolOffset += RANDOM_PER_ID;
  return bytes;
}

export const ID_REGEX = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** the 10 characters of an id that hold its millisecond time */
function timePart(ms: number): string {
  let time = '';
  let t = Math.floor(ms);
  for (let i = 0; i < 10; i++) {
    time = ALPHABET[t % 32] + time;
    t = Math.floor(t / 32);
  }
  return time;
}

/** the last id's millisecond and random digits (indexes into ALPHABET), for the next one in it */
let lastMs = -1;
const lastDigits = new Uint8Array(RANDOM_PER_ID);

export function newId(now: number = Date.now()): string {
  const ms = Math.floor(now);
  if (ms !== lastMs || !increment(lastDigits)) {
    const bytes = randomBytesForId();
    for (let i = 0; i < RANDOM_PER_ID; i++) lastDigits[i] = bytes[i]! % 32;
    lastMs = ms;
  }
  let random = '';
  for (let i = 0; i < RANDOM_PER_ID; i++) random += ALPHABET[lastDigits[i]!];
  return timePart(ms) + random;
}

/** adds one to base-32 `digits`; false when they were all 31 (then left as they were) */
function increment(digits: Uint8Array): boolean {
  for (let i = digits.length - 1; i >= 0; i--) {
    if (digits[i]! < 31) {
      digits[i]! += 1;
      digits.fill(0, i + 1);
      return true;
    }
  }
  return false;
}

/**
 * Whether a string can be an id of ours. Ids are opaque to clients (CONTRACT.md §6): a string that
 * is not one names nothing, so the repositories find nothing for it (a 404 upstream) without
 * asking the database.
 */
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
  return timePart(ms) + '0'.repeat(RANDOM_PER_ID);
}
