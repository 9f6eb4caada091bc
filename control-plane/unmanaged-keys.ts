/**
 * The problems of a config file's keys outside the managed sections (MANAGED_SECTIONS): one per
 * unknown section, not one per key in it (a misspelt `cach:` of 8 settings is one mistake), with
 * the sections there are and the nearest one when it is a likely misspelling. The sections the
 * product writes itself (`instances/`, `runtime/`) are named as such; a key under a managed
 * section's name that is no key of it (`placement/x`) is named as itself.
 */
import type { RejectedKey } from '../src/config/config-state.js';
import { MANAGED_SECTIONS } from './change-plan.js';

const SECTIONS = MANAGED_SECTIONS.map((s) => s.replace(/\/$/, ''));
/** written by the instances themselves (registrations, the cache epoch: schema.ts), never applied */
const RUNTIME_SECTIONS = new Set(['instances', 'runtime']);

/** Levenshtein distance, for names of a few letters */
function distance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function nearest(section: string): string | undefined {
  const lower = section.toLowerCase();
  const best = SECTIONS.map((s) => ({ s, d: distance(lower, s) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= 2 && best.d < best.s.length ? best.s : undefined;
}

/** `keys`: the file's keys that isManagedKey refused, in the file's order */
export function unmanagedKeyProblems(keys: readonly string[]): RejectedKey[] {
  const problems: RejectedKey[] = [];
  const sections = new Map<string, number>();
  for (const key of keys) {
    const section = key.split('/')[0]!;
    if (SECTIONS.includes(section)) problems.push({ key, reason: 'not a managed config key' });
    else sections.set(section, (sections.get(section) ?? 0) + 1);
  }
  for (const [section, count] of sections) {
    if (RUNTIME_SECTIONS.has(section)) {
      problems.push({
        key: section,
        reason: 'written by shardgate itself, not by config apply: leave it out',
      });
      continue;
    }
    const guess = nearest(section);
    problems.push({
      key: section,
      reason: `not a config section (${count} key(s) under it; the sections are ${SECTIONS.join(', ')})${guess ? `: did you mean ${guess}?` : ''}`,
    });
  }
  return problems;
}
