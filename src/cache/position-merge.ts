/**
 * Merge of two replication positions as stored in cache version keys: per MariaDB GTID domain
 * the highest seq wins, so concurrent raises never lower a version. For MySQL GTID sets the newer
 * text simply replaces the old (documented approximation; MySQL shards are not in the local stack).
 * The same rule runs in Lua inside Redis (redis.ts) and here for the memory store.
 */
export function mergePositions(
  flavour: 'mariadb' | 'mysql',
  current: string | undefined,
  next: string,
): string {
  if (!current || flavour === 'mysql') return next;
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
