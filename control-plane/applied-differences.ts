/**
 * Where the running processes enforce another value than etcd's keys give (`status`,
 * `breakers get`). The two agree unless a key holds a value the processes reject and etcd's
 * history no longer holds its last good one (compacted away, by an operator or by etcd's own
 * auto-compaction): the processes keep the value they had, while the keys read plainly give the
 * next one down the chain (a kind's default, the built-in default), which only a process started
 * now would use. An outside check saw `breakers get` and `status` print 2000 for a setting all
 * three processes enforced as 250. An instance behind the config revision differs too, for a
 * moment. Compared: the settings sections of `/health/config`'s `applied` (config-health.ts),
 * leaf by leaf; a leaf a process does not report (an older build) is not compared.
 */

/** the sections of `applied` compared (shards, tenants and weights are shown by their own lines) */
export const COMPARED_SECTIONS = ['breakers', 'cache', 'replication', 'mail', 'cors', 'http'] as const;
/** leaves that are state, not settings */
const NOT_SETTINGS = new Set(['cache.epoch', 'cache.tenantEpochs']);

export interface AppliedDifference {
  /** e.g. `breakers.redis.call_timeout_ms` */
  setting: string;
  /** the value etcd's keys give, as JSON */
  etcd: string;
  /** each other value a process enforces, as JSON, with the processes (ids) that do */
  enforced: { value: string; by: string[] }[];
}

function leaves(value: unknown, path: string, out: Map<string, string>): Map<string, string> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, path ? `${path}.${k}` : k, out);
  } else if (!NOT_SETTINGS.has(path)) out.set(path, JSON.stringify(value));
  return out;
}

/**
 * `expected`: the sections as etcd gives them; `applied`: each process's `applied` (by id, in
 * the order to name them).
 */
export function appliedDifferences(
  expected: Record<string, unknown>,
  applied: Map<string, Record<string, unknown> | undefined>,
): AppliedDifference[] {
  const want = new Map<string, string>();
  for (const section of COMPARED_SECTIONS) leaves(expected[section], section, want);
  const processes = [...applied].map(([id, a]) => {
    const got = new Map<string, string>();
    for (const section of COMPARED_SECTIONS) if (a?.[section] !== undefined) leaves(a[section], section, got);
    return { id, got };
  });
  const differences: AppliedDifference[] = [];
  for (const [setting, etcd] of want) {
    const enforced = new Map<string, string[]>();
    for (const { id, got } of processes) {
      const value = got.get(setting);
      if (value !== undefined && value !== etcd) enforced.set(value, [...(enforced.get(value) ?? []), id]);
    }
    if (enforced.size > 0)
      differences.push({ setting, etcd, enforced: [...enforced].map(([value, by]) => ({ value, by })) });
  }
  return differences;
}

/** one line per difference, for the human output */
export function differenceLine(d: AppliedDifference): string {
  const others = d.enforced.map((e) => `${e.by.join(', ')} enforce ${e.value}`).join('; ');
  return `${d.setting}: ${others}, where etcd's keys give ${d.etcd} (a key they reject whose last good value etcd's history no longer holds, which they keep; or a process behind the config revision)`;
}
