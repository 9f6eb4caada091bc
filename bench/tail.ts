/**
 * Where the tail of a cached read at a constant rate comes from, through HAProxy:
 *
 *   npx tsx bench/tail.ts <rate/s | 0> [redis|near] [seconds, default 8]
 *
 * With a rate it runs the paced generator (bench/load.ts) and prints the latency histogram, the
 * worst 100 ms windows, and what each stack API instance reported for the same window: reads
 * served and CPU, how many handler times exceeded 10 / 25 / 50 ms, its event-loop lag maximum
 * (prom-client's, reset by each scrape) and its GC pauses. Rate 0 runs a
 * closed loop of 32 connections instead, for the maximum to take 70 % of. TAIL_SOCKETS sets the
 * paced generator's connections (default 32, as in the bench).
 */

import { topology } from '../stack/topology.js';
import {
  bookReadsOver,
  CACHE_KEYS,
  HAPROXY,
  INSTANCES,
  instanceMetrics,
  preflight,
  setCache,
} from './api-state.js';
import { etcdDel, remember } from './etcd.js';
import { closedLoop, paced } from './load.js';
import { ApiClient, runTag } from './setup.js';

const rate = Number(process.argv[2] ?? 0);
const near = process.argv[3] === 'near';
const seconds = Number(process.argv[4] ?? 8);
const EDGES = [1, 2, 5, 10, 20, 30, 40, 50, 80, Number.POSITIVE_INFINITY];

await preflight();
const restore = await remember(CACHE_KEYS);
const tenant = `${runTag()}-tail`;
try {
  const shard = topology.shards[0]!.id;
  const api = new ApiClient(HAPROXY, INSTANCES);
  await api.createTenants([{ id: tenant, shard }]);
  const f = await api.fixture(tenant, shard, { books: 1, copies: 5 });
  const req = { path: `/v1/books/${f.books[0]}`, headers: { 'X-Tenant-ID': tenant } };
  await setCache(true, req, INSTANCES, near);
  await closedLoop(HAPROXY, [{ build: () => req }], { connections: 16, seconds: 1 }); // warm-up
  const what = near ? 'near-cache hit' : 'Redis hit';
  if (rate === 0) {
    const c = await closedLoop(HAPROXY, [{ build: () => req }], { connections: 32, seconds });
    console.log(
      `${what}, closed loop of 32: ${c.rps.toFixed(0)}/s, p50 ${c.p50.toFixed(2)} ms, p99 ${c.p99.toFixed(1)} ms`,
    );
  } else {
    const samples: Array<[number, number]> = [];
    const before = await Promise.all(INSTANCES.map(instanceMetrics));
    console.log(`paced run starts at ${new Date().toISOString()} (unix ms ${Date.now()})`);
    const r = await paced(HAPROXY, req, {
      rate,
      seconds,
      sockets: Number(process.env.TAIL_SOCKETS ?? 32),
      samples,
    });
    const after = await Promise.all(INSTANCES.map(instanceMetrics));
    console.log(
      `${what} paced at ${rate}/s: ${r.rps.toFixed(0)}/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(1)} ms, ` +
        `max ${r.max.toFixed(1)} ms, ${r.errors} errors; generator late p99 ${r.generatorLag?.p99.toFixed(1)} ms, max ${r.generatorLag?.max.toFixed(1)} ms`,
    );
    const counts = EDGES.map(() => 0);
    for (const [, l] of samples) counts[EDGES.findIndex((e) => l < e)]!++;
    console.log(`  latency histogram: ${EDGES.map((e, i) => `<${e}: ${counts[i]}`).join(', ')}`);
    after.forEach((a, i) => {
      const b = before[i]!;
      const gc = Object.entries(a.gc)
        .map(
          ([kind, g]) =>
            `${kind} ${g.count - (b.gc[kind]?.count ?? 0)} × (${(g.ms - (b.gc[kind]?.ms ?? 0)).toFixed(0)} ms)`,
        )
        .join(', ');
      console.log(
        `  api-${i + 1}: ${a.cacheReads - b.cacheReads} reads, ${(((a.cpuSeconds - b.cpuSeconds) / r.seconds) * 100).toFixed(0)} % of a core; ` +
          `event-loop lag max ${a.lagMaxMs.toFixed(1)} ms; GC ${gc}; handler time over 10 / 25 / 50 ms: ` +
          ['0.01', '0.025', '0.05'].map((le) => bookReadsOver(b, a, le).over).join(' / '),
      );
    });
    const windows = new Map<number, number[]>();
    for (const [t, l] of samples) {
      const w = Math.floor(t / 100);
      windows.set(w, [...(windows.get(w) ?? []), l]);
    }
    const worst = [...windows.entries()]
      .map(([w, ls]) => ({ at: w / 10, max: Math.max(...ls), over10: ls.filter((l) => l > 10).length }))
      .sort((a, b) => b.max - a.max)
      .slice(0, 5);
    console.log(
      `  worst 100 ms windows: ${worst.map((x) => `at ${x.at.toFixed(1)} s max ${x.max.toFixed(1)} ms (${x.over10} > 10 ms)`).join('; ')}`,
    );
  }
} finally {
  await restore();
  await etcdDel(`tenants/${tenant}`);
}
