/**
 * The young-generation GC of one API instance under a cached read at a constant rate:
 *
 *   npx tsx bench/gc-trace.ts [redis|near|db|loans] [rate/s, default 1750] [seconds, default 8]
 *
 * Starts an extra API instance beside the stack (the stack's V8 flags plus `--trace-gc`, plus any
 * in GC_TRACE_NODE_FLAGS), reads one cached book from it directly with the paced generator, and
 * prints its collections during the measured window: scavenges, their pauses, and how much each
 * one left in the heap beyond the one before (≈ what it promoted to the old generation), with the
 * latency beside them. `db`: the cache switched off, so every read goes to a replica. `loans`: the
 * bench's borrow + return pairs in a closed loop of 16 instead (the rate is not used).
 * This is how the ioredis auto-pipelining finding in bench/ROUNDS.md was measured.
 */
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { API_NODE_FLAGS } from '../stack/app-processes.js';
import { topology } from '../stack/topology.js';
import { CACHE_KEYS, HAPROXY, INSTANCES, preflight, setCache } from './api-state.js';
import { etcdDel, remember } from './etcd.js';
import { startExtraInstance, stopExtraInstance } from './extra-instance.js';
import { closedLoop, paced } from './load.js';
import { scenarios } from './scenarios.js';
import { ApiClient, runTag } from './setup.js';

export interface Gc {
  kind: 'scavenge' | 'mark-compact';
  afterMb: number;
  pauseMs: number;
}
/** `[pid:addr]  1234 ms: Scavenge 98.3 (175.5) -> 54.3 (179.8) MB, 27.28 / 0.02 ms …` */
export function parseTraceGc(line: string): Gc | undefined {
  const m = /ms: (Scavenge|Mark-Compact)\S* [\d.]+ \([\d.]+\) -> ([\d.]+) \([\d.]+\) MB, ([\d.]+) \//.exec(
    line,
  );
  if (!m) return undefined;
  return {
    kind: m[1] === 'Scavenge' ? 'scavenge' : 'mark-compact',
    afterMb: Number(m[2]),
    pauseMs: Number(m[3]),
  };
}

export interface GcSummary {
  scavenges: number;
  meanPauseMs: number;
  maxPauseMs: number;
  /** mean growth of the heap from one scavenge to the next (no full collection between) */
  leftPerScavengeMb: number;
  fullCollections: number;
  fullPauseMs: number;
}

export function summariseGc(events: readonly Gc[]): GcSummary {
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const pauses = events.filter((e) => e.kind === 'scavenge').map((e) => e.pauseMs);
  const grew: number[] = [];
  for (let i = 1; i < events.length; i++) {
    if (events[i]!.kind === 'scavenge' && events[i - 1]!.kind === 'scavenge')
      grew.push(events[i]!.afterMb - events[i - 1]!.afterMb);
  }
  const full = events.filter((e) => e.kind === 'mark-compact').map((e) => e.pauseMs);
  return {
    scavenges: pauses.length,
    meanPauseMs: pauses.length ? sum(pauses) / pauses.length : 0,
    maxPauseMs: pauses.length ? Math.max(...pauses) : 0,
    leftPerScavengeMb: grew.length ? sum(grew) / grew.length : 0,
    fullCollections: full.length,
    fullPauseMs: sum(full),
  };
}

async function main(): Promise<void> {
  const mode = process.argv[2] ?? 'redis';
  const near = mode === 'near';
  const rate = Number(process.argv[3] ?? 1750);
  const seconds = Number(process.argv[4] ?? 8);
  await preflight();
  const restore = await remember(CACHE_KEYS);
  const { child, base } = await startExtraInstance({
    id: 'bench-gc-trace',
    nodeArgs: [
      ...API_NODE_FLAGS,
      '--trace-gc',
      ...(process.env.GC_TRACE_NODE_FLAGS ?? '').split(' ').filter(Boolean),
    ],
    stdout: 'pipe',
  });
  const events: Gc[] = [];
  let measuring = false;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const gc = parseTraceGc(line);
    if (gc && measuring) events.push(gc);
  });
  const tenant = `${runTag()}-gc`;
  try {
    const api = new ApiClient(HAPROXY, INSTANCES);
    const shards = topology.shards.map((x) => x.id);
    const tenants = shards.map((shard, i) => ({ id: `${tenant}-${i}`, shard }));
    await api.createTenants(tenants);
    const f = await Promise.all(
      tenants.map((t) => api.fixture(t.id, t.shard, { members: 4, books: 1, copies: 100_000 })),
    );
    const req = { path: `/v1/books/${f[0]!.books[0]}`, headers: { 'X-Tenant-ID': f[0]!.id } };
    await setCache(mode !== 'db', req, [...INSTANCES, base], near);
    // `loans`: the bench's borrow + return pairs over one lending tenant per shard, closed loop
    const lending = scenarios({
      tag: tenant,
      hot: f[0]!,
      registrations: f[0]!.id,
      lenders: f,
      mixed: [],
    }).find((x) => x.key === 'loans')!.steps;
    const steps = mode === 'loans' ? lending : [{ build: () => req }];
    await closedLoop(base, steps, { connections: 8, seconds: 3 }); // warm-up
    measuring = true;
    const r =
      mode === 'loans'
        ? await closedLoop(base, steps, { connections: 16, seconds })
        : await paced(base, req, { rate, seconds, sockets: 16 });
    measuring = false;
    const g = summariseGc(events);
    const what = {
      near: 'near cache hit',
      db: 'uncached read',
      loans: 'borrow + return (closed loop of 16)',
    }[mode];
    console.log(
      `${what ?? 'Redis hit'} at ${r.rps.toFixed(0)}/s for ${seconds} s, directly on one extra instance: ` +
        `p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(1)} ms, max ${r.max.toFixed(1)} ms, ${r.errors} errors`,
    );
    console.log(
      `  scavenges: ${g.scavenges}, pause mean ${g.meanPauseMs.toFixed(2)} ms, max ${g.maxPauseMs.toFixed(2)} ms; ` +
        `heap left by each beyond the one before: ${g.leftPerScavengeMb.toFixed(2)} MB on average`,
    );
    console.log(`  full collections: ${g.fullCollections}, ${g.fullPauseMs.toFixed(1)} ms in all`);
  } finally {
    await stopExtraInstance(child);
    await restore();
    await etcdDel(`tenants/${tenant}-`, { prefix: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error: unknown) => {
    console.error(
      `gc-trace failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    process.exit(1);
  });
}
