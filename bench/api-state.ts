/**
 * What the running API says about itself, for the bench: a probe of one request (status, X-Cache,
 * X-Read-From), Prometheus samples summed over instances, the live switches of etcd
 * `cache/enabled` and `cache/near_max_entries` (put, then wait until every instance applies
 * them), and waiting for the
 * email pipeline to catch up (outbox relayed, deliveries standing still).
 */
import { httpStatus, sleep } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { etcdPut } from './etcd.js';
import type { Req } from './load.js';

const H = topology.host;
export const HAPROXY = `http://${H}:${topology.haproxy.port}`;
export const INSTANCES = topology.apis.map((a) => `http://${H}:${a.port}`);
/** the instance the direct runs go to (api-1) */
export const DIRECT = INSTANCES[0]!;

export interface Probe {
  status: number;
  cache: string | null;
  readFrom: string | null;
  servedBy: string | null;
}

export async function probe(base: string, req: Req): Promise<Probe> {
  const res = await fetch(`${base}${req.path}`, {
    method: req.method ?? 'GET',
    headers: req.headers,
    body: req.body,
    signal: AbortSignal.timeout(5000),
  });
  await res.arrayBuffer();
  return {
    status: res.status,
    cache: res.headers.get('x-cache'),
    readFrom: res.headers.get('x-read-from'),
    servedBy: res.headers.get('x-served-by'),
  };
}

/** Sum of a Prometheus metric over `instances`, by the value of one label. */
export async function metricByLabel(
  name: string,
  label: string,
  instances: readonly string[] = INSTANCES,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  // the API prefixes its metric names with `shardgate_`
  const pattern = new RegExp(`^(?:shardgate_)?${name}\\{([^}]*)\\}\\s+(\\S+)`);
  const labelPattern = new RegExp(`${label}="([^"]*)"`);
  for (const base of instances) {
    let text = '';
    try {
      const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) });
      text = await res.text();
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      const m = pattern.exec(line);
      if (!m) continue;
      const key = labelPattern.exec(m[1]!)?.[1] ?? '';
      out[key] = (out[key] ?? 0) + Number(m[2]);
    }
  }
  return out;
}

/** the etcd keys setCache flips (restore them with bench/etcd.ts `remember`) */
export const CACHE_KEYS = ['cache/enabled', 'cache/near_max_entries'] as const;

/** entries of the near cache when a scenario wants it */
export const NEAR_ENTRIES = 10_000;

/**
 * Put etcd `cache/enabled` and `cache/near_max_entries` (NEAR_ENTRIES or 0) and wait until every
 * instance answers the probe accordingly and reports its near cache live or off.
 */
export async function setCache(
  enabled: boolean,
  req: Req,
  instances: readonly string[] = INSTANCES,
  near = false,
): Promise<void> {
  await etcdPut('cache/enabled', String(enabled));
  await etcdPut('cache/near_max_entries', String(near ? NEAR_ENTRIES : 0));
  const deadline = Date.now() + 5000;
  for (;;) {
    const answers = await Promise.all(instances.map((base) => probe(base, req)));
    const live = await metricByLabel('cache_near_live', 'instance', instances);
    const nearOk =
      instances.length === Object.keys(live).length && Object.values(live).every((v) => v === (near ? 1 : 0));
    if (nearOk && answers.every((a) => a.status === 200 && (a.cache === 'BYPASS') === !enabled)) {
      // one more read per instance, so the hot entry is in Redis before a HIT run starts
      if (enabled) await Promise.all(instances.map((base) => probe(base, req)));
      return;
    }
    if (Date.now() > deadline)
      throw new Error(
        `cache/enabled=${enabled} near=${near} not in force on every instance within 5 s (near live: ${JSON.stringify(live)}; answers: ${answers
          .map((a) => `${a.status} X-Cache ${a.cache}`)
          .join(', ')})`,
      );
    await sleep(100);
  }
}

export async function preflight(): Promise<void> {
  const urls = [`${HAPROXY}/health/ready`, ...INSTANCES.map((b) => `${b}/health/ready`)];
  const statuses = await Promise.all(urls.map((u) => httpStatus(u, 2000)));
  const down = urls.filter((_, i) => statuses[i] !== 200);
  if (down.length > 0) {
    console.error(
      `bench: the local stack is not up (${down.join(', ')} not ready); run: npm run stack -- up`,
    );
    process.exit(1);
  }
}

/** unsent outbox rows over every shard (every API instance reports every shard: ask one) */
export async function outboxBacklog(): Promise<number> {
  const backlog = await metricByLabel('outbox_backlog', 'shard', [DIRECT]);
  return Object.values(backlog).reduce((a, b) => a + b, 0);
}

/** emails the worker has handed to the SMTP server so far */
export async function mailsDelivered(): Promise<number> {
  const worker = `http://${H}:${topology.worker.metricsPort}`;
  const m = await metricByLabel('mail_delivery_success_total', 'target', [worker]);
  return Object.values(m).reduce((a, b) => a + b, 0);
}

/**
 * Wait (up to 3 minutes) until the email worker has relayed the outbox and then sent what it
 * relayed (its delivery counter stands still for a second); answers the outbox rows left.
 */
export async function drainOutbox(): Promise<number> {
  const deadline = Date.now() + 180_000;
  let left = await outboxBacklog();
  while (left > 0 && Date.now() < deadline) {
    await sleep(500);
    left = await outboxBacklog();
  }
  let last = -1;
  for (let n = await mailsDelivered(); n !== last && Date.now() < deadline; n = await mailsDelivered()) {
    last = n;
    await sleep(1000);
  }
  return left;
}
