/**
 * The YAML document of `config export` / `config apply`: the etcd keys of CONTRACT.md §4 as a
 * tree. `shards/<id>`, `tenants/<id>` and `placement` hold JSON objects and appear as YAML
 * objects; every other key is a path of sections ending in a scalar
 * (`breakers/redis/failure_threshold: 7` ⇄ `breakers: {redis: {failure_threshold: 7}}`).
 */
import { Document, isAlias, isMap, isScalar, isSeq, type Node, parseDocument, visit } from 'yaml';
import { UserError } from './ctl-errors.js';
import { TERMINAL_RAW } from './terminal-safe.js';

type Doc = Record<string, unknown>;

const JSON_SECTIONS = new Set(['shards', 'tenants']);
const NUMBER_TEXT = /^-?\d+(\.\d+)?$/;

function scalarFromText(value: string): unknown {
  // blanks around a boolean or a number (`echo true | etcdctl put`) are left out: an export never
  // holds either as a string, which apply refuses (quotedScalar). The instances ignore ASCII
  // blanks only: a value with a BOM around it (rejected) is exported plain, and applied so.
  if (value.trim() === 'true' || value.trim() === 'false') return value.trim() === 'true';
  if (NUMBER_TEXT.test(value.trim())) return Number(value);
  return value;
}

function parseJsonOrText(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return value;
  }
}

export function toDocument(entries: Map<string, string>): Doc {
  const doc: Doc = {};
  for (const key of [...entries.keys()].sort()) {
    const value = entries.get(key)!;
    const parts = key.split('/');
    if (key === 'placement') {
      doc.placement = parseJsonOrText(value);
      continue;
    }
    let node = doc;
    for (const part of parts.slice(0, -1)) {
      if (typeof node[part] !== 'object' || node[part] === null) node[part] = {};
      node = node[part] as Doc;
    }
    const leaf = parts.at(-1)!;
    node[leaf] =
      JSON_SECTIONS.has(parts[0]!) && parts.length === 2 ? parseJsonOrText(value) : scalarFromText(value);
  }
  return doc;
}

/**
 * A number or a boolean written as a string (`ttl_seconds: "61"`): the document is typed, so
 * that is the wrong type, as `name: 123` is, whatever blanks the string holds (`" 61"`, `"61\n"`,
 * `"\ufeff61 "`: an outside check had those applied, the blanks and the BOM written to etcd as
 * they were). An export never writes one: toDocument gives such text, blanks around it or not, as
 * a number or a boolean.
 */
function quotedScalar(value: string): boolean {
  const trimmed = value.trim();
  return NUMBER_TEXT.test(trimmed) || trimmed === 'true' || trimmed === 'false';
}

/** The etcd text of a leaf; undefined for an empty (null) leaf, which has no text. */
function leafText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  // YAML reads 99999999999999999999999 as 1e+23: written plain, the schema says it is out of
  // range, not that it is no plain number (etcd's values are plain numbers)
  if (typeof value === 'number' && Number.isFinite(value) && /e/i.test(String(value)))
    return value.toLocaleString('en-US', { useGrouping: false, maximumFractionDigits: 20 });
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value === null || value === undefined) return undefined;
  return JSON.stringify(value);
}

export function fromDocument(doc: unknown): Map<string, string> {
  const { entries, empty } = readDocument(doc);
  // every empty leaf in one line, so one run of `config apply` names them all
  if (empty.length > 0) throw new UserError(empty.map((key) => `${key}: empty value`).join('; '));
  return entries;
}

/**
 * The keys of a document, and apart the keys of its empty (null) leaves, which have no value: for
 * a caller that reports them with the file's other problems. Throws only for a document that is
 * no mapping at all.
 */
export function readDocument(doc: unknown): {
  entries: Map<string, string>;
  empty: string[];
  quoted: string[];
} {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UserError(
      'config file must be a YAML mapping or a JSON object of sections (shards, tenants, breakers, …)',
    );
  }
  const out = new Map<string, string>();
  const empty: string[] = [];
  const quoted: string[] = [];
  const walk = (path: string[], value: unknown) => {
    const key = path.join('/');
    const isJsonKey = key === 'placement' || (JSON_SECTIONS.has(path[0]!) && path.length === 2);
    if (isJsonKey) {
      out.set(key, typeof value === 'string' ? value : JSON.stringify(value));
      return;
    }
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk([...path, k], v);
      return;
    }
    const text = leafText(value);
    if (text === undefined) empty.push(key);
    else out.set(key, text);
    if (typeof value === 'string' && quotedScalar(value)) quoted.push(key);
  };
  for (const [k, v] of Object.entries(doc)) walk([k], v);
  return { entries: out, empty, quoted };
}

/** A map key of a config file that YAML reads as something other than a name. */
export interface NonNameKey {
  /** the key's path as the file writes it (`tenants/007`), for the message */
  key: string;
  /** the same path as the parsed document has it (`tenants/7`): the keys read from it are void */
  parsedPath: string;
  reason: string;
}

function describeKey(value: unknown): string {
  if (value === null) return 'null (no name)';
  if (typeof value === 'number') return `the number ${String(value)}`;
  if (typeof value === 'boolean') return `the boolean ${String(value)}`;
  return 'no name';
}

/**
 * The map keys of config file `text` (which must parse: call after `parse`) that YAML reads as no
 * string: a plain `007`, `1e3`, `0x10` is the number 7, 1000, 16, `true` a boolean, `~` or nothing
 * null, `[a, b]` a collection. Every key of a config file is a name (a section, an id, a setting,
 * a JSON field), and the parsed document has such a key only as the text of its value
 * (`tenants/7`, `lb/weights/1000`): a different id from the one written, silently. Each is
 * returned (the caller refuses the file, asking to quote it), in the file's order. A key that is
 * an alias is judged by the node it names; a value that is an alias is not followed (its anchor
 * is checked where it is written). A JSON file's keys are always strings.
 */
export function nonNameKeys(text: string): NonNameKey[] {
  const document = parseDocument(text);
  const found: NonNameKey[] = [];
  const walk = (node: unknown, path: string[], parsedPath: string[]) => {
    if (isSeq(node)) {
      for (const [i, item] of node.items.entries())
        walk(item, [...path, String(i)], [...parsedPath, String(i)]);
      return;
    }
    if (!isMap(node)) return;
    for (const pair of node.items) {
      const written = pair.key as Node | null;
      const key = isAlias(written) ? written.resolve(document) : written;
      const source = written?.range ? text.slice(written.range[0], written.range[1]).trim() : '';
      if (isScalar(key) && typeof key.value === 'string') {
        walk(pair.value, [...path, key.value], [...parsedPath, key.value]);
        continue;
      }
      const value = isScalar(key) ? key.value : key === null ? null : undefined;
      // as the parsed document names it: yaml gives a key the text of its value, '' for null
      const parsed = value === null || value === undefined ? '' : String(value);
      const shown = source === '' ? '(empty key)' : source;
      found.push({
        key: [...path, shown].join('/'),
        parsedPath: [...parsedPath, parsed].join('/'),
        reason:
          isScalar(key) && source !== ''
            ? `a key YAML reads as ${describeKey(value)}, not as the name ${source}: quote it ("${source.replace(/["\\]/g, '\\$&')}")`
            : `a key YAML reads as ${describeKey(value)}: a key must be a name`,
      });
    }
  };
  walk(document.contents, [], []);
  return found;
}

/**
 * The YAML text of an export. A string holding a character of TERMINAL_RAW (control, separator,
 * bidi), which a plain or single-quoted scalar would show raw, is written double-quoted,
 * where YAML has escapes for it (`"\e"`, `"\u202e"`): shardgate-ctl's output guard
 * (terminal-safe.ts) then turns any such character left raw into an escape that reads back as the
 * same value, where in a plain scalar it would read back as the six characters `\u202e`.
 */
export function toYaml(doc: Doc): string {
  const document = new Document(doc);
  visit(document, {
    Scalar(_key, node) {
      if (typeof node.value === 'string' && TERMINAL_RAW.test(node.value)) node.type = 'QUOTE_DOUBLE';
    },
  });
  return document.toString();
}
