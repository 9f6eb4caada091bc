/**
 * A tenant's display name (`tenants create --name`, used in emails) is one printable line: the
 * schema's length bounds, not blank, and no control character (C0, DEL, C1), U+2028 / U+2029
 * (which break every line-oriented output, `tenants list`, and email headers) nor bidi control
 * (U+202A–U+202E, U+2066–U+2069, which reorder what a reader sees).
 */
import { util } from 'zod/v4/core';
import { tenantSchema } from '../src/config/schema.js';
import { hasLooseJoiner, LOOSE_JOINER_MESSAGE } from '../src/domain/visible-text.js';
import { UserError } from './ctl-errors.js';
import { TERMINAL_RAW } from './terminal-safe.js';

const nameSchema = tenantSchema.shape.name.unwrap();
const MIN = nameSchema.minLength ?? 1;
const MAX = nameSchema.maxLength ?? Number.POSITIVE_INFINITY;

/** control characters, the Unicode line and paragraph separators, bidi controls and marks */
const UNPRINTABLE = new RegExp(TERMINAL_RAW.source, 'gu');

const codePoint = (c: string) => `U+${c.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * A name's length as the schema's bounds count it: zod counts a string in code points (`😀` is
 * one, not two), with this very function. `name.length` counted UTF-16 units, so 150 emoji were
 * refused as 300 characters while the instances take an entry of 200 (an outside check).
 */
export const nameLength = (name: string): number => util.codePointLength(name);

/** `name` if it is a valid display name, else a UserError naming `option` and the culprit. */
export function checkDisplayName(name: string, option: string): string {
  const length = nameLength(name);
  if (length < MIN || length > MAX) {
    throw new UserError(`${option} must be ${MIN}–${MAX} characters, got ${length}`);
  }
  if (!/\S/.test(name)) throw new UserError(`${option} must not be blank`);
  const bad = [...name.matchAll(UNPRINTABLE)][0];
  if (bad) {
    throw new UserError(
      `${option} must not contain control characters, U+2028, U+2029, bidi controls or direction marks (${codePoint(bad[0])} at character ${nameLength(name.slice(0, bad.index)) + 1})`,
    );
  }
  // the rest of the schema's rules (direction marks, stray tags, private use), as the instances
  // judge the entry: a name they would reject is never written
  const judged = nameSchema.safeParse(name);
  if (!judged.success) throw new UserError(`${option} ${judged.error.issues[0]!.message}`);
  // a new name is held to what the API holds names to (the instances still read an older one)
  if (hasLooseJoiner(name)) throw new UserError(`${option} ${LOOSE_JOINER_MESSAGE}`);
  return name;
}

/**
 * A name as one line of output: each unprintable character as `\u{XXXX}`. An entry written by
 * other means than `tenants create` (etcdctl, `config apply`) may hold one; the schema accepts it.
 */
export function printableName(name: string): string {
  return name.replace(UNPRINTABLE, (c) => `\\u{${c.codePointAt(0)!.toString(16).toUpperCase()}}`);
}
