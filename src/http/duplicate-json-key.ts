/**
 * The first member name that occurs twice in one object of a JSON text, as its path (`title`,
 * `items.0.name`), or undefined when there is none.
 *
 * RFC 8259 §4: names within an object SHOULD be unique, and parsers differ on duplicates;
 * `JSON.parse` keeps the last one silently, so `{"title":"A","title":"B"}` would store "B" where
 * a proxy or a log reader in front saw "A". The API refuses unknown fields so that a typo is not
 * ignored; a field given twice is refused for the same reason.
 *
 * One pass over the text, no values built: names are compared as JSON decodes them (`"\u0074itle"`
 * is `title`). Text that is not JSON is the parser's to refuse: what this answers for it means
 * nothing, and the caller asks only before parsing anyway.
 */
export function duplicateJsonKey(text: string): string | undefined {
  // one frame per open object (its names so far, the current one) or array (the current index)
  const frames: ({ names: Set<string>; name?: string } | { index: number })[] = [];
  let expectName = false;
  const path = (last: string) =>
    [...frames.slice(0, -1).map((f) => ('index' in f ? String(f.index) : (f.name ?? ''))), last].join('.');
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 0x22 /* " */) {
      let end = i + 1;
      let escaped = false;
      while (end < text.length && text.charCodeAt(end) !== 0x22) {
        if (text.charCodeAt(end) === 0x5c /* \ */) {
          escaped = true;
          end++;
        }
        end++;
      }
      const top = frames.at(-1);
      if (expectName && top && 'names' in top) {
        let name = text.slice(i + 1, end);
        if (escaped) {
          try {
            name = JSON.parse(text.slice(i, end + 1)) as string;
          } catch {
            return undefined; // not JSON: the parser says so
          }
        }
        if (top.names.has(name)) return path(name);
        top.names.add(name);
        top.name = name;
        expectName = false;
      }
      i = end;
    } else if (ch === 0x7b /* { */) {
      frames.push({ names: new Set() });
      expectName = true;
    } else if (ch === 0x5b /* [ */) {
      frames.push({ index: 0 });
      expectName = false;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      frames.pop();
      expectName = false;
    } else if (ch === 0x2c /* , */) {
      const top = frames.at(-1);
      if (top && 'index' in top) top.index++;
      else expectName = top !== undefined;
    }
  }
  return undefined;
}
