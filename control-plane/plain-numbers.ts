/**
 * The numbers of a config file (`config apply -f`) that are not written as plain decimal digits.
 * YAML reads `1e2`, `0x3e`, `0o76`, `+5`, `-0`, `10.0` and `.inf` as numbers, and the parsed
 * document cannot tell them from `100` or `62`: the file was applied as if it said those (an
 * outside check), while `lb weight` and `breakers set` refuse the same text. So each number is
 * judged by its source text, as the single commands judge theirs (whole-number.ts): decimal digits
 * only, and no leading zero either (`010`, which a YAML 1.1 reader takes for octal 8; JSON has
 * none). A JSON file is read by the same YAML parser, so `10.0` there is refused too. Every
 * numeric value of the schema is a whole number (settings, weights, ports), so nothing valid is
 * refused; the range is the schema's to judge.
 *
 * A value that is an alias is not followed (its anchor is judged where it is written); a map key
 * that is no string is left to nonNameKeys (config-document.ts), which refuses it.
 */
import { isAlias, isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { REVISION_FIELD } from './export-revision.js';
import { isWholeNumberText } from './whole-number.js';

/** One number of the file written otherwise than as plain digits. */
export interface NonPlainNumber {
  /** the etcd key it belongs to (`cache/ttl_seconds`, `shards/shard-3`) */
  key: string;
  /** the refusal, naming the field inside a JSON value (`replicas.0.weight`) */
  reason: string;
}

/** sections whose `<section>/<id>` is one JSON value; `placement` is one as a whole */
const JSON_SECTIONS = new Set(['shards', 'tenants']);

function keyAndField(path: readonly string[]): { key: string; field: string[] } {
  const depth = path[0] === 'placement' ? 1 : JSON_SECTIONS.has(path[0]!) ? 2 : path.length;
  return { key: path.slice(0, depth).join('/'), field: path.slice(depth) };
}

/** Whether `source` is how a number of a file must be written: digits, no leading zero. */
export function isPlainNumberText(source: string): boolean {
  return isWholeNumberText(source) && !/^0\d/.test(source);
}

/** The numbers of config file `text` (which must parse) not written as plain digits, in file order. */
export function nonPlainNumbers(text: string): NonPlainNumber[] {
  const document = parseDocument(text);
  const found: NonPlainNumber[] = [];
  const walk = (node: unknown, path: string[]) => {
    if (isAlias(node)) return;
    if (isSeq(node)) {
      for (const [i, item] of node.items.entries()) walk(item, [...path, String(i)]);
      return;
    }
    if (isMap(node)) {
      for (const pair of node.items) {
        const k = pair.key;
        if (!isScalar(k) || typeof k.value !== 'string') continue;
        if (path.length === 0 && k.value === REVISION_FIELD) continue; // export-revision.ts judges it
        walk(pair.value, [...path, k.value]);
      }
      return;
    }
    if (!isScalar(node) || typeof node.value !== 'number') return;
    const source = node.source ?? String(node.value);
    if (isPlainNumberText(source)) return;
    const { key, field } = keyAndField(path);
    const hint = Number.isFinite(node.value) && /^\d+$/.test(String(node.value)) ? ` (${node.value})` : '';
    found.push({
      key,
      reason: `${field.length > 0 ? `${field.join('.')}: ` : ''}written ${source}, which YAML reads as ${node.value}: write a number as decimal digits only, without sign, fraction, exponent, base prefix or leading zero${hint}`,
    });
  };
  walk(document.contents, []);
  return found;
}
