/**
 * Waiting for a put in etcd to be in force on the API instances, instead of sleeping: the contract
 * is that a put applies within 2 s, so each helper polls every instance until the new values show
 * (on the live breakers themselves, or in `/health/config`'s `applied`) and fails after 2 s.
 */
import { INSTANCES } from './api.js';
import { waitFor } from './wait-for.js';

/** the contract's bound for a put in etcd to apply on every instance */
export const APPLY_WITHIN_MS = 2000;

interface LiveBreaker {
  kind: string;
  settings: Record<string, number>;
}

/** the live breakers of `kind` on `base` (empty when it has none) */
async function breakersOfKind(base: string, kind: string): Promise<LiveBreaker[]> {
  const body = (await (await fetch(`${base}/health/circuit-breakers`)).json()) as {
    breakers: LiveBreaker[];
  };
  return body.breakers.filter((b) => b.kind === kind);
}

/**
 * Every breaker of `kind` on every instance of `bases` (at least one each) runs with `settings`
 * (e.g. `{ failure_threshold: 3 }`), within 2 s.
 */
export async function breakerSettingsInForce(
  kind: string,
  settings: Record<string, number>,
  bases: readonly string[] = INSTANCES,
): Promise<void> {
  const wanted = Object.entries(settings);
  await waitFor(
    async () =>
      (await Promise.all(bases.map((b) => breakersOfKind(b, kind)))).every(
        (live) => live.length > 0 && live.every((b) => wanted.every(([k, v]) => b.settings[k] === v)),
      ),
    {
      timeoutMs: APPLY_WITHIN_MS,
      intervalMs: 20,
      what: `${kind} breakers with ${JSON.stringify(settings)} on ${bases.join(', ')}`,
    },
  );
}

/** the `applied` config of an instance, as `/health/config` shows it */
export interface AppliedConfig {
  cache: { enabled: boolean; ttlSeconds: number; nearMaxEntries: number };
  replication: { maxLagSeconds: number; rywTimeoutMs: number };
  breakers: Record<string, Record<string, number>>;
  [key: string]: unknown;
}

async function appliedOf(base: string): Promise<AppliedConfig> {
  return ((await (await fetch(`${base}/health/config`)).json()) as { applied: AppliedConfig }).applied;
}

/** `check` holds for the applied config of every instance of `bases`, within 2 s */
export async function configInForce(
  check: (applied: AppliedConfig) => boolean,
  what: string,
  bases: readonly string[] = INSTANCES,
): Promise<void> {
  await waitFor(async () => (await Promise.all(bases.map(appliedOf))).every(check), {
    timeoutMs: APPLY_WITHIN_MS,
    intervalMs: 20,
    what: `${what} applied on ${bases.join(', ')}`,
  });
}

/** `cache/enabled` is `enabled` on every instance of `bases` */
export function cacheEnabledInForce(enabled: boolean, bases: readonly string[] = INSTANCES): Promise<void> {
  return configInForce((a) => a.cache.enabled === enabled, `cache/enabled ${enabled}`, bases);
}
