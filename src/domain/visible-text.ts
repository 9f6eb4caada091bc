/**
 * Characters a one-line text shown to people (a member's name, a book's title or author, a
 * tenant's display name in mail subjects) must not hold beyond control characters, for the API's
 * bodies (routes/schemas.ts) and the tenant entries in etcd (config/schema.ts) alike:
 * - bidi controls (U+202A–U+202E, U+2066–U+2069) reorder what a reader sees (`\u202Egnp.exe`
 *   reads `exe.png`), and the invisible direction marks (U+061C, U+200E, U+200F) make two names
 *   that read the same different strings;
 * - tag characters (U+E0000–U+E007F) carry ASCII text no reader sees; the one place they belong
 *   is a subdivision flag (U+1F3F4, two to six tag letters or digits, U+E007F: 🏴 England is
 *   `gbeng`), which stays allowed, and nothing longer or of other tags passes as one;
 * - private-use characters (U+E000–U+F8FF, planes 15 and 16) show whatever a font puts there;
 * - characters that show as nothing inside a line make `Ann\u200b` read as `Ann`: format
 *   characters (U+00AD soft hyphen, U+180E, U+200B zero width space, U+2060–U+206F word joiner,
 *   invisible operators and the deprecated format controls, U+FEFF, U+FFF9–U+FFFB interlinear
 *   annotation, U+1D173–U+1D17A musical format), the combining grapheme joiner (U+034F), the
 *   Khmer inherent vowels (U+17B4, U+17B5, "not to be used"), the Hangul fillers (U+115F,
 *   U+1160, U+3164, U+FFA0) and the blank Braille pattern (U+2800): an outside check stored
 *   `Ann\u3164`, read as `Ann`. ZWJ and ZWNJ (U+200C, U+200D) stay: emoji sequences and several
 *   scripts need them, but only between two characters they can join: at either end of the
 *   text, next to a blank or next to another joiner they join nothing and show as nothing
 *   (`Ann\u200d` read as `Ann`, an outside check); so do the Mongolian variation selectors
 *   (U+180B–U+180D, U+180F), which choose a letter's form.
 * `withoutHiddenText` adds the five checks to a zod string schema.
 */
import type { z } from 'zod';

export const BIDI_OR_MARK = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/u;
export const BIDI_MESSAGE =
  'must not contain bidi controls or direction marks (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)';

const SUBDIVISION_FLAG =
  /\u{1F3F4}[\u{E0061}-\u{E007A}]{2}[\u{E0030}-\u{E0039}\u{E0061}-\u{E007A}]{0,4}\u{E007F}/gu;
const TAG = /[\u{E0000}-\u{E007F}]/u;
export const TAG_MESSAGE = 'must not contain tag characters (U+E0000–U+E007F) outside an emoji flag';

/** whether `s` holds a tag character outside a subdivision flag */
export function hasStrayTag(s: string): boolean {
  return TAG.test(s) && TAG.test(s.replace(SUBDIVISION_FLAG, ''));
}

export const PRIVATE_USE = /\p{Co}/u;
export const PRIVATE_USE_MESSAGE = 'must not contain private-use characters';

export const INVISIBLE =
  /[\u00AD\u115F\u1160\u180E\u200B\u2060-\u206F\u2800\u3164\uFEFF\uFFA0\uFFF9-\uFFFB\u{1D173}-\u{1D17A}]|\u034F|\u17B4|\u17B5/u;
export const INVISIBLE_MESSAGE =
  'must not contain invisible characters (U+00AD, U+034F, U+115F, U+1160, U+17B4, U+17B5, U+180E, U+200B, U+2060–U+206F, U+2800, U+3164, U+FEFF, U+FFA0, U+FFF9–U+FFFB, U+1D173–U+1D17A)';

/** a ZWJ or ZWNJ at either end, next to a blank, or next to another one: joining nothing */
export const LOOSE_JOINER = /(?:^|[\s\u200C\u200D])[\u200C\u200D]|[\u200C\u200D](?:$|\s)/u;
export const LOOSE_JOINER_MESSAGE =
  'must not hold a zero-width joiner or non-joiner (U+200C, U+200D) that joins nothing: at either end, next to a blank or next to another one';

/** `schema` refusing each of the five, with its own message */
export function withoutHiddenText<T extends z.ZodString>(schema: T): T {
  return schema
    .refine((s) => !BIDI_OR_MARK.test(s), BIDI_MESSAGE)
    .refine((s) => !INVISIBLE.test(s), INVISIBLE_MESSAGE)
    .refine((s) => !LOOSE_JOINER.test(s), LOOSE_JOINER_MESSAGE)
    .refine((s) => !hasStrayTag(s), TAG_MESSAGE)
    .refine((s) => !PRIVATE_USE.test(s), PRIVATE_USE_MESSAGE) as T;
}
