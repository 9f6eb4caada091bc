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
 * An alias is followed and judged where it is used (its anchor may sit on `$etcdRevision`, which
 * is judged elsewhere, or on nothing that is checked; a review). A shard, tenant or placement
 * written as one JSON string goes to etcd as that text, so the numbers inside it are judged too
 * (`'{"master":{"host":"h","port":3.316e3}}'`). A map key that is no string is left to nonNameKeys
 * (config-document.ts), which refuses it.
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

/** Whether `path` is a key whose value is one JSON value: `placement`, `shards/<id>`, `tenants/<id>`. */
function isJsonKeyPath(path: readonly string[]): boolean {
  return (path.length === 1 && path[0] === 'placement') || (path.length === 2 && JSON_SECTIONS.has(path[0]!));
}

/** Whether `source` is how a number of a file must be written: digits, no leading zero. */
export function isPlainNumberText(source: string): boolean {
  return isWholeNumberText(source) && !/^0\d/.test(source);
}

/**
 * The number tokens of JSON text, outside its strings, in order: `-?digits(.digits)?(e±digits)?`.
 * Text that is no JSON yields what it yields; the instances' schema refuses it anyway.
 */
export function jsonNumberTokens(json: string): string[] {
  const tokens: string[] = [];
  const number = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  for (let i = 0; i < json.length; ) {
    const c = json[i]!;
    if (c === '"') {
      for (i++; i < json.length && json[i] !== '"'; i++) if (json[i] === '\\') i++;
      i++;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      number.lastIndex = i;
      const token = number.exec(json)?.[0] ?? c;
      tokens.push(token);
      i += token.length;
    } else i++;
  }
  return tokens;
}

const PLAIN_RULE =
  'write a number as decimal digits only, without sign, fraction, exponent, base prefix or leading zero';

/**
 * The numbers of config file `text` (which must parse) not written as plain digits, in file order.
 * `format` names the file's language in the reasons ("written 1e2, which JSON reads as 100"): a
 * .json file is parsed as YAML too, but the numbers JSON allows (`1e2`, `10.0`, `-0`) are read as
 * the same values by both.
 */
export function nonPlainNumbers(
  text: string,
  { format = 'YAML' }: { format?: 'YAML' | 'JSON' } = {},
): NonPlainNumber[] {
  const document = parseDocument(text);
  const found: NonPlainNumber[] = [];
  const following = new Set<unknown>();
  const walk = (node: unknown, path: string[]) => {
    if (isAlias(node)) {
      const target = node.resolve(document);
      if (!target || following.has(target)) return; // a recursive alias
      following.add(target);
      walk(target, path);
      following.delete(target);
      return;
    }
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
    if (!isScalar(node)) return;
    if (typeof node.value === 'string' && isJsonKeyPath(path)) {
      for (const token of jsonNumberTokens(node.value)) {
        if (!isPlainNumberText(token)) {
          found.push({
            key: path.join('/'),
            reason: `the JSON text writes a number ${token}: ${PLAIN_RULE}`,
          });
        }
      }
      return;
    }
    if (typeof node.value !== 'number') return;
    const source = node.source ?? String(node.value);
    if (isPlainNumberText(source)) return;
    const { key, field } = keyAndField(path);
    const hint = Number.isFinite(node.value) && /^\d+$/.test(String(node.value)) ? ` (${node.value})` : '';
    found.push({
      key,
      reason: `${field.length > 0 ? `${field.join('.')}: ` : ''}written ${source}, which ${format} reads as ${node.value}: ${PLAIN_RULE}${hint}`,
    });
  };
  walk(document.contents, []);
  return found;
}
