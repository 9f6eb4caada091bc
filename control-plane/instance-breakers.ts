/**
 * The circuit breakers the registered API instances report open or half_open right now (the
 * contract's spelling, CONTRACT.md §6)
 * (`GET /health/circuit-breakers`), for `status`: a shard master that is down shows there, and
 * nowhere else the control plane looks (an outside check: `status` showed nothing wrong while
 * every write of a shard's tenants answered 503). All instances asked at once, each within 1 s;
 * one that does not answer is left out (status says what each answers at /health/ready).
 */
export interface BreakerTrouble {
  /** e.g. `mysql-master:shard-1` */
  breaker: string;
  state: 'open' | 'half_open';
  /** opened by writes the server refused (read-only, out of disk): its reads still pass */
  writesOnly?: true;
  /** the instances reporting it so, in registration order */
  instances: string[];
}

interface BreakerBody {
  breakers?: { name?: unknown; state?: unknown; writesOnly?: unknown }[];
}

export async function breakerTrouble(instances: { id: string; url: string }[]): Promise<BreakerTrouble[]> {
  const reports = await Promise.all(
    instances.map(async ({ id, url }) => {
      try {
        const res = await fetch(`${url}/health/circuit-breakers`, { signal: AbortSignal.timeout(1000) });
        if (!res.ok) {
          await res.body?.cancel();
          return [];
        }
        const body = (await res.json()) as BreakerBody;
        return (body.breakers ?? []).flatMap((b) =>
          typeof b.name === 'string' && (b.state === 'open' || b.state === 'half_open')
            ? [
                {
                  id,
                  breaker: b.name,
                  state: b.state as BreakerTrouble['state'],
                  writesOnly: b.writesOnly === true,
                },
              ]
            : [],
        );
      } catch {
        return [];
      }
    }),
  );
  const byBreaker = new Map<string, BreakerTrouble>();
  for (const { id, breaker, state, writesOnly } of reports.flat()) {
    const key = `${breaker}\n${state}\n${writesOnly}`;
    const entry: BreakerTrouble = byBreaker.get(key) ?? {
      breaker,
      state,
      ...(writesOnly ? { writesOnly: true as const } : {}),
      instances: [],
    };
    entry.instances.push(id);
    byBreaker.set(key, entry);
  }
  return [...byBreaker.values()].sort((a, b) => a.breaker.localeCompare(b.breaker));
}
