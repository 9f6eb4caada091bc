/**
 * The text of a config value that is a list (`cors/allowed_origins`, `http/allowed_hosts`): items
 * separated by commas or blanks, or a JSON array of strings (what `config apply` writes for a
 * YAML list). Empty items are dropped; a JSON array's items are trimmed.
 */
export type Listed = { ok: true; items: string[] } | { ok: false; reason: string };

/** how a list is written, for the reasons below */
const LIST_FORM = 'write the items bare, separated by commas or blanks, or as a JSON array of strings';

/**
 * the items of `text` as written, or why it is no list. A JSON literal or string alone is refused:
 * `null` put for "none" was read as the name "null" (an outside check), a quoted name kept its
 * quotes. So is a word for "nothing" alone in any case (`NULL`, `None`, `nil`): names are compared
 * in lower case, so `NULL` had become the one allowed host "null" (a review)
 */
export function listItems(text: string): Listed {
  const trimmed = text.trim();
  if (/^(null|true|false)$/.test(trimmed))
    return { ok: false, reason: `is JSON ${trimmed}, not a list: ${LIST_FORM}; empty for the default` };
  if (trimmed.startsWith('"')) return { ok: false, reason: `is a JSON string, not a list: ${LIST_FORM}` };
  if (!trimmed.startsWith('[')) {
    const items = trimmed.split(/[\s,]+/).filter((s) => s !== '');
    // alone also beside separators (`NULL,`: a review)
    const [only] = items;
    if (items.length === 1 && only && /^(null|true|false|none|nil|undefined)$/i.test(only))
      return {
        ok: false,
        reason: `is the word ${only} alone, which names nothing: ${LIST_FORM}; empty for the default`,
      };
    return { ok: true, items };
  }
  let data: unknown;
  try {
    data = JSON.parse(trimmed);
  } catch {
    return { ok: false, reason: 'starts with "[" but is not a JSON array' };
  }
  if (!Array.isArray(data) || !data.every((s): s is string => typeof s === 'string'))
    return { ok: false, reason: 'must be a JSON array of strings' };
  return { ok: true, items: data.map((s) => s.trim()).filter((s) => s !== '') };
}

export interface ListRules {
  /** what `*` alone means, for the reason given when it stands beside other items */
  star: string;
  /** at most this many items; `noun` names them in the reason (`origins`) */
  maxItems: number;
  noun: string;
  /** a hint added to the reason for too many items */
  tooManyHint?: string;
  /** why an item is refused, or undefined when it is fine */
  problem: (item: string) => string | undefined;
  /** the item as kept and compared for duplicates (as written when absent) */
  normalize?: (item: string) => string;
}

/** at most this many characters in a list's text */
const MAX_TEXT = 8192;

/**
 * The items of a list setting (`listItems`), checked by `rules`: `*` alone or not at all, at most
 * `maxItems`, each one fine by `problem`, none twice; or the first reason the value is refused.
 */
export function parseList(text: string, rules: ListRules): Listed {
  if (text.length > MAX_TEXT) return { ok: false, reason: `must be at most ${MAX_TEXT} characters` };
  const listed = listItems(text);
  if (!listed.ok) return listed;
  const { items } = listed;
  if (items.includes('*'))
    return items.length === 1
      ? listed
      : { ok: false, reason: `"*" ${rules.star}: it must be the only entry` };
  if (items.length > rules.maxItems)
    return {
      ok: false,
      reason: `lists ${items.length} ${rules.noun}; at most ${rules.maxItems}${rules.tooManyHint ?? ''}`,
    };
  const kept: string[] = [];
  for (const item of items) {
    const problem = rules.problem(item);
    if (problem) return { ok: false, reason: problem };
    const value = rules.normalize ? rules.normalize(item) : item;
    if (kept.includes(value)) return { ok: false, reason: `lists ${JSON.stringify(value)} more than once` };
    kept.push(value);
  }
  return { ok: true, items: kept };
}
