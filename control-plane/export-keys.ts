/**
 * The keys `config export` writes: the managed keys a config file can hold. A key the instances
 * reject as no key at all ("unknown key": `tenants/acme/sub`, `placement/x`, `cache/bogus`, `lb/x`)
 * is left out, and so is a key outside the managed sections (`cb-topkey`) other than those
 * shardgate writes itself (`instances/`, `runtime/`, `moving/`, never exported): the caller names
 * them in one warning line. The document cannot hold such a key as itself (`tenants/acme/sub`
 * would come back as a field `sub` of tenant `acme`, and `config apply` of the export would refuse
 * the file or rewrite that tenant), so export → apply stays a no-op. A key of a known shape with a
 * bad value (an invalid id, an unknown breaker kind, an out-of-range number) is exported as it is,
 * as the instances reject it, and `config apply` names it in its warning.
 */
import { parseConfigKey } from '../src/config/schema.js';
import { isManagedKey } from './change-plan.js';

/** sections written by shardgate itself: no config, left out of an export without a word */
const WRITTEN_BY_SHARDGATE = ['instances/', 'runtime/', 'moving/'];

export function exportableEntries(entries: ReadonlyMap<string, string>): {
  entries: Map<string, string>;
  /** the keys left out that an operator should hear of, sorted */
  leftOut: string[];
} {
  const out = new Map<string, string>();
  const leftOut: string[] = [];
  for (const [key, value] of entries) {
    if (!isManagedKey(key)) {
      if (!WRITTEN_BY_SHARDGATE.some((s) => key.startsWith(s))) leftOut.push(key);
      continue;
    }
    // the shape of the key alone (a value that is not UTF-8 would be named before its key)
    const parsed = parseConfigKey(key, '');
    if (!parsed.ok && parsed.reason === 'unknown key') {
      leftOut.push(key);
      continue;
    }
    out.set(key, value);
  }
  return { entries: out, leftOut: leftOut.sort() };
}
