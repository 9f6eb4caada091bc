import { parseGtid } from '../routing/gtid.js';
import { ABSENT_VERSION_MARK } from './interface.js';

/**
 * Merge of two replication positions as stored in cache version keys, so concurrent raises never
 * lower a version (a raise arriving after a newer one keeps the newer): per MariaDB GTID domain
 * the highest seq wins; MySQL GTID sets are united (per uuid, and tag, the union of intervals,
 * members sorted by key, intervals ascending). Text that does not parse as the flavour's
 * position replaces what was there. The same rule runs in Lua inside Redis (redis.ts) and here
 * for the memory store; the Lua keeps a MySQL set with a number past 2^53 - 1 (15 digits: Lua's
 * doubles) as the newer text replaces it, which this does too. An absent key's mark
 * (ABSENT_VERSION_MARK) is replaced whole, as an absent key.
 */
export function mergePositions(
  flavour: 'mariadb' | 'mysql',
  current: string | undefined,
  next: string,
): string {
  if (!current || current.startsWith(ABSENT_VERSION_MARK)) return next;
  if (flavour === 'mysql') return uniteMySql(current, next) ?? next;
  const domains = new Map<string, { server: string; seq: bigint }>();
  for (const text of [current, next]) {
    for (const part of text.split(',')) {
      const m = /^(\d+)-(\d+)-(\d+)$/.exec(part.trim());
      if (!m) continue;
      const have = domains.get(m[1]!);
      const seq = BigInt(m[3]!);
      if (!have || seq > have.seq) domains.set(m[1]!, { server: m[2]!, seq });
    }
  }
  return [...domains]
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([d, { server, seq }]) => `${d}-${server}-${seq}`)
    .join(',');
}

function uniteMySql(current: string, next: string): string | undefined {
  if (/\d{16}/.test(current) || /\d{16}/.test(next)) return undefined;
  const a = parseGtid('mysql', current);
  const b = parseGtid('mysql', next);
  if (a?.flavour !== 'mysql' || b?.flavour !== 'mysql') return undefined;
  const keys = [...new Set([...a.sets.keys(), ...b.sets.keys()])].sort();
  return keys
    .map((key) => {
      const all = [...(a.sets.get(key) ?? []), ...(b.sets.get(key) ?? [])].sort((x, y) =>
        x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0,
      );
      const out: [bigint, bigint][] = [];
      for (const [s, e] of all) {
        const last = out[out.length - 1];
        if (last && s <= last[1] + 1n) last[1] = e > last[1] ? e : last[1];
        else out.push([s, e]);
      }
      return [key, ...out.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`))].join(':');
    })
    .join(',');
}
