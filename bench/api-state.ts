/**
 * What the running API says about itself, for the bench: a probe of one request (status, X-Cache,
 * X-Read-From), Prometheus samples summed over instances, the live switches of etcd
 * `cache/enabled` and `cache/near_max_entries` (put, then wait until every instance applies
 * them), and waiting for the
 * email pipeline to catch up (outbox relayed, deliveries standing still).
 */
import { metricSamples, metricValue } from '../stack/metric-samples.js';
import { httpStatus } from '../stack/probes.js';
import { sleep } from '../stack/process-manager.js';
import { apiUrls, haproxyUrl, workerUrl } from '../stack/urls.js';
import { etcdPut } from './etcd.js';
import type { Req } from './load.js';

/** the bench's names for stack/urls.ts: HAProxy's frontend, and each instance directly */
export const HAPROXY = haproxyUrl;
export const INSTANCES = apiUrls;
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

/** What one API instance's /metrics says about itself, for where a latency tail formed. */
export interface InstanceMetrics {
  /** largest event-loop delay since the previous scrape (prom-client resets it on each), ms */
  lagMaxMs: number;
  cpuSeconds: number;
  /** cache reads of any result */
  cacheReads: number;
  /** GC pauses by kind (minor, major, incremental, weakcb) */
  gc: Record<string, { ms: number; count: number }>;
  /** the handler-time histogram of GET /v1/books/:id: cumulative count by upper bound (s, as text) */
  bookReads: Record<string, number>;
}

export function parseInstanceMetrics(text: string): InstanceMetrics {
  const gc: InstanceMetrics['gc'] = {};
  for (const part of ['sum', 'count'] as const) {
    for (const { labels, value } of metricSamples(text, `nodejs_gc_duration_seconds_${part}`)) {
      if (labels.kind === undefined) continue;
      const k = gc[labels.kind] ?? { ms: 0, count: 0 };
      gc[labels.kind] = k;
      if (part === 'sum') k.ms = value * 1000;
      else k.count = value;
    }
  }
  const bookReads: Record<string, number> = {};
  for (const { labels, value } of metricSamples(text, 'shardgate_http_request_duration_seconds_bucket', {
    route: '/v1/books/:id',
    method: 'GET',
  })) {
    if (labels.le !== undefined) bookReads[labels.le] = (bookReads[labels.le] ?? 0) + value;
  }
  return {
    lagMaxMs: (metricValue(text, 'nodejs_eventloop_lag_max_seconds') ?? Number.NaN) * 1000,
    cpuSeconds: metricValue(text, 'process_cpu_seconds_total') ?? Number.NaN,
    cacheReads: metricValue(text, 'shardgate_cache_requests_total') ?? 0,
    gc,
    bookReads,
  };
}

/** Scrape one instance (this also resets its event-loop lag maximum). */
export async function instanceMetrics(base: string): Promise<InstanceMetrics> {
  const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) });
  return parseInstanceMetrics(await res.text());
}

/** Book reads between two scrapes, and how many of them took longer than `bound` (s) in the handler. */
export function bookReadsOver(
  before: InstanceMetrics,
  after: InstanceMetrics,
  bound: string,
): { all: number; over: number } {
  const delta = (m: string) => (after.bookReads[m] ?? 0) - (before.bookReads[m] ?? 0);
  const all = delta('+Inf');
  return { all, over: all - delta(bound) };
}

/** What the instances saw of a run of book reads, summed over them (paced rows of the bench). */
export interface ApiSide {
  /** book reads the handlers answered, and how many took over 25 ms inside the handler */
  bookReads: number;
  bookReadsOver25ms: number;
  /** the largest event-loop delay of any instance, ms */
  lagMaxMs: number;
  /** GC pauses of all instances together, ms */
  gcMs: number;
}

export function apiSide(before: readonly InstanceMetrics[], after: readonly InstanceMetrics[]): ApiSide {
  let bookReads = 0;
  let bookReadsOver25ms = 0;
  let gcMs = 0;
  after.forEach((a, i) => {
    const b = before[i]!;
    const reads = bookReadsOver(b, a, '0.025');
    bookReads += reads.all;
    bookReadsOver25ms += reads.over;
    for (const [kind, g] of Object.entries(a.gc)) gcMs += g.ms - (b.gc[kind]?.ms ?? 0);
  });
  return { bookReads, bookReadsOver25ms, lagMaxMs: Math.max(...after.map((a) => a.lagMaxMs)), gcMs };
}

/** Sum of a Prometheus metric over `instances`, by the value of one label. */
export async function metricByLabel(
  name: string,
  label: string,
  instances: readonly string[] = INSTANCES,
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const base of instances) {
    let text = '';
    try {
      const res = await fetch(`${base}/metrics`, { signal: AbortSignal.timeout(3000) });
      text = await res.text();
    } catch {
      continue;
    }
    // the API and the worker prefix their metric names with `shardgate_`
    for (const { labels, value } of metricSamples(text, `shardgate_${name}`)) {
      const key = labels[label] ?? '';
      out[key] = (out[key] ?? 0) + value;
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
  const m = await metricByLabel('mail_delivery_success_total', 'target', [workerUrl]);
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
