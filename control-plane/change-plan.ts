/**
 * What a write changes: the managed keys, the changes from a read to the desired values (a value
 * that says the same as the one etcd holds is no change), and how a change is printed. Pure: reads
 * and validates nothing (validate-changes.ts judges the changes, guarded-commit.ts writes them).
 */
import { parseConfigKey, scalarSchemas } from '../src/config/schema.js';
import type { PrefixRead } from './prefix-read.js';

export interface Change {
  key: string;
  old: string | undefined;
  /** undefined = delete */
  new: string | undefined;
}

/**
 * Sections an operator manages; `instances/` is written by the instances themselves. The
 * sections of the plain settings (`cache/`, `replication/`, `mail/`, …) come from the schema,
 * so a new setting is managed without a second list to keep.
 */
export const MANAGED_SECTIONS = [
  'shards/',
  'tenants/',
  'placement',
  'breakers/',
  ...new Set(Object.keys(scalarSchemas).map((key) => `${key.split('/')[0]}/`)),
  'lb/',
];

export function isManagedKey(key: string): boolean {
  return MANAGED_SECTIONS.some((s) => (s.endsWith('/') ? key.startsWith(s) : key === s));
}

/**
 * Whether two values of `key` say the same: the same canonical text, or both valid with the same
 * parsed value (defaults filled in: a replica without `"weight"` is one of weight 1), so a file
 * that leaves out a default or orders fields otherwise rewrites no key.
 */
function sameMeaning(key: string, a: string, b: string): boolean {
  if (canonical(a) === canonical(b)) return true;
  const pa = parseConfigKey(key, a);
  const pb = parseConfigKey(key, b);
  return pa.ok && pb.ok && JSON.stringify(pa.parsed) === JSON.stringify(pb.parsed);
}

/** Canonical text of a value so `{"a":1, "b":2}` and `{"b":2,"a":1}` compare equal. */
export function canonical(value: string): string {
  const trimmed = value.trim();
  if (!trimmed.startsWith('{')) return trimmed;
  try {
    return JSON.stringify(sortKeys(JSON.parse(trimmed)));
  } catch {
    return trimmed;
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Changes needed to reach `desired` (undefined value = delete); semantically equal values are no change. */
export function planChanges(current: PrefixRead, desired: Map<string, string | undefined>): Change[] {
  const changes: Change[] = [];
  for (const [key, value] of desired) {
    const old = current.entries.get(key);
    if (value === undefined ? old === undefined : old !== undefined && sameMeaning(key, old, value)) continue;
    changes.push({ key, old, new: value });
  }
  return changes.sort((a, b) => a.key.localeCompare(b.key));
}

/** One line of a diff: `+ key = value`, `- key (was value)` or `~ key: old -> new`. */
export function formatChange(c: Change): string {
  if (c.old === undefined) return `+ ${c.key} = ${c.new}`;
  if (c.new === undefined) return `- ${c.key} (was ${c.old})`;
  return `~ ${c.key}: ${c.old} -> ${c.new}`;
}
