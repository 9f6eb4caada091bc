/**
 * The keys each registered instance rejects (`/health/config` within 1 s; absent when it does not
 * answer). An instance judges with its own environment: a server outside its SHARDGATE_DB_HOSTS, a
 * `passwordEnv` it lacks. Those it rejects while shardgate-ctl, run with another environment,
 * takes the value: `status` and `shards list` show them, so neither reports a config the
 * instances do not run. All asked at once; keyed by the instance's url.
 */
export interface Rejected {
  key: string;
  reason: string;
}

/** what `status` reads of an instance's (or a worker's) `/health/config` answer */
export interface ConfigHealthAnswer {
  revision?: number;
  connected?: boolean;
  disconnectedSince?: string | null;
  rejected?: Rejected[];
  /** the values the process applies (config-health.ts), compared with etcd's (applied-differences.ts) */
  applied?: Record<string, unknown>;
}

/** `url`'s own `/health/config` answer within 1 s; undefined when it gives none (or not a 2xx) */
export async function configHealthOf(url: string): Promise<ConfigHealthAnswer | undefined> {
  try {
    // no redirect followed: only the instance's own answer counts
    const res = await fetch(`${url}/health/config`, { signal: AbortSignal.timeout(1000), redirect: 'error' });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return (await res.json()) as ConfigHealthAnswer;
  } catch {
    return undefined;
  }
}

export async function instanceRejections(urls: string[]): Promise<Map<string, Rejected[]>> {
  return rejectionsOf(await instanceConfigs(urls));
}

/** each url's `/health/config` answer, all asked at once; the ones that gave none left out */
export async function instanceConfigs(urls: string[]): Promise<Map<string, ConfigHealthAnswer>> {
  const answers = await Promise.all(urls.map(async (url) => [url, await configHealthOf(url)] as const));
  return new Map(answers.flatMap(([url, a]) => (a ? [[url, a] as const] : [])));
}

/** the rejected keys of each answer that lists them (keyed by url) */
export function rejectionsOf(configs: Map<string, ConfigHealthAnswer>): Map<string, Rejected[]> {
  return new Map(
    [...configs].flatMap(([url, a]) => (Array.isArray(a.rejected) ? [[url, a.rejected] as const] : [])),
  );
}
