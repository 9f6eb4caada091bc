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
 *   scripts need them, but only where they join something (hasLooseJoiner: next to a virama,
 *   between letters of a joining script, inside an emoji sequence): anywhere else they show as
 *   nothing (`Ann\u200d`, `An\u200dn` read as `Ann`; outside checks); so do the Mongolian
 *   variation selectors (U+180B–U+180D, U+180F), which choose a letter's form.
 * `withoutHiddenText` adds the five checks to a zod string schema.
 */
import type { z } from 'zod';

/**
 * a lone UTF-16 surrogate: JSON can carry one (`"\ud800"`), but neither utf8mb4 nor MariaDB's
 * JSON can store it — a tenant name holding one made every write that queues a mail fail (500)
 */
export const LONE_SURROGATE = /\p{Cs}/u;
export const LONE_SURROGATE_MESSAGE = 'must be well-formed Unicode (it has a lone surrogate)';

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

/**
 * Viramas (Unicode canonical combining class 9, as of Unicode 14): a joiner next to one asks for
 * a conjunct, half or chillu form (`ര്\u200d` is a Malayalam chillu, at a word's end too).
 */
const VIRAMA =
  /[\u{94D}\u{9CD}\u{A4D}\u{ACD}\u{B4D}\u{BCD}\u{C4D}\u{CCD}\u{D3B}-\u{D3C}\u{D4D}\u{DCA}\u{E3A}\u{EBA}\u{F84}\u{1039}-\u{103A}\u{1714}-\u{1715}\u{1734}\u{17D2}\u{1A60}\u{1B44}\u{1BAA}-\u{1BAB}\u{1BF2}-\u{1BF3}\u{2D7F}\u{A806}\u{A82C}\u{A8C4}\u{A953}\u{A9C0}\u{AAF6}\u{ABED}\u{10A3F}\u{11046}\u{11070}\u{1107F}\u{110B9}\u{11133}-\u{11134}\u{111C0}\u{11235}\u{112EA}\u{1134D}\u{11442}\u{114C2}\u{115BF}\u{1163F}\u{116B6}\u{1172B}\u{11839}\u{1193D}-\u{1193E}\u{119E0}\u{11A34}\u{11A47}\u{11A99}\u{11C3F}\u{11D44}-\u{11D45}\u{11D97}]/u;
/** scripts whose letters join each other: a joiner between two of their letters picks a form */
const JOINING_SCRIPT =
  /[\p{scx=Arabic}\p{scx=Syriac}\p{scx=Nko}\p{scx=Mongolian}\p{scx=Mandaic}\p{scx=Manichaean}\p{scx=Psalter_Pahlavi}\p{scx=Adlam}\p{scx=Hanifi_Rohingya}\p{scx=Sogdian}]/u;
const PICTOGRAPH = /\p{Extended_Pictographic}/u;
/** what may end the emoji before a ZWJ of an emoji sequence: a pictograph, VS16, a skin tone */
const EMOJI_END = /\p{Extended_Pictographic}|\u{FE0F}|\p{Emoji_Modifier}/u;
const MARK = /\p{M}/u;
const JOINER = /[\u200C\u200D]/u;

/**
 * Whether `s` holds a ZWJ or ZWNJ (U+200D, U+200C) that joins nothing, after the context rules of
 * RFC 5892's CONTEXTJ, widened to emoji: one is taken next to a virama (either side), between two
 * letters of a joining script (Arabic, Syriac, …; marks after the first one skipped), or, a ZWJ,
 * between two parts of an emoji sequence. Anywhere else (Latin, Cyrillic, CJK, at either end
 * without a virama, next to a blank or another joiner) it changes nothing a reader sees:
 * `An\u200dn` reads as `Ann` (an outside review).
 */
export function hasLooseJoiner(s: string): boolean {
  if (!JOINER.test(s)) return false;
  const chars = [...s];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    if (c !== '\u200C' && c !== '\u200D') continue;
    const prev = chars[i - 1];
    const next = chars[i + 1];
    if (prev === undefined) return true;
    if (VIRAMA.test(prev) || (next !== undefined && VIRAMA.test(next))) continue;
    if (next === undefined) return true;
    if (c === '\u200D' && EMOJI_END.test(prev) && PICTOGRAPH.test(next)) continue;
    let base = i - 1;
    while (base > 0 && MARK.test(chars[base]!)) base--;
    if (JOINING_SCRIPT.test(chars[base]!) && JOINING_SCRIPT.test(next)) continue;
    return true;
  }
  return false;
}
export const LOOSE_JOINER_MESSAGE =
  'must not hold a zero-width joiner or non-joiner (U+200C, U+200D) that joins nothing: one is taken next to a virama, between two letters of a joining script (Arabic, Syriac, …) or inside an emoji sequence';

/**
 * `schema` refusing each of the five, with its own message. `looseJoiners: 'allow'` leaves out
 * the joiner check, for values read back from etcd (config/schema.ts): a tenant entry whose name
 * was valid before the check existed must not turn invalid under a running deployment (its
 * tenant would answer 404 on an instance started with no earlier good version of it); where such
 * names are written (the CLI's --name) they are checked with `hasLooseJoiner` itself.
 */
export function withoutHiddenText<T extends z.ZodString>(
  schema: T,
  { looseJoiners = 'refuse' }: { looseJoiners?: 'refuse' | 'allow' } = {},
): T {
  return schema
    .refine((s) => !BIDI_OR_MARK.test(s), BIDI_MESSAGE)
    .refine((s) => !INVISIBLE.test(s), INVISIBLE_MESSAGE)
    .refine((s) => looseJoiners === 'allow' || !hasLooseJoiner(s), LOOSE_JOINER_MESSAGE)
    .refine((s) => !hasStrayTag(s), TAG_MESSAGE)
    .refine((s) => !PRIVATE_USE.test(s), PRIVATE_USE_MESSAGE) as T;
}
