/**
 * `npx tsx bench/config-scale.ts [tenants] [single-puts]` (default 10000 1000) — how the API
 * instances bear a large tenant directory that changes one key at a time, as an operator's loop
 * of `shardgate-ctl tenants create` or `etcdctl put` would change it. Needs the local stack up.
 *
 * Puts `tenants` entries in transactions of 100 (one watch response each), waits until every
 * instance counts them (`GET /health/config`, `applied.tenants`), then puts `single-puts` more one
 * at a time, each awaited, while it asks every instance's `GET /health` every 20 ms: the answer
 * times show what a change costs an instance's event loop. Prints per instance p50 / p99 / max of
 * those answers and how long after the last put each instance counted it; deletes its tenants
 * (by key, in transactions of 100) at the end. JSON to `bench/results/<date>-<sha>-config-scale.json`.
 */
import { join } from 'node:path';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { REPO_ROOT } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { INSTANCES, preflight } from './api-state.js';
import { git, machine } from './machine.js';
import { writeResultFile } from './result-file.js';
import { runTag } from './setup.js';

const TENANTS = Number(process.argv[2] ?? 10_000);
const SINGLE_PUTS = Number(process.argv[3] ?? 1_000);
const POLL_MS = 20;
const PREFIX = `${topology.etcd.prefix}tenants/`;

function percentile(sorted: readonly number[], p: number): number {
  return sorted.length === 0
    ? Number.NaN
    : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

async function appliedTenants(base: string): Promise<number> {
  const r = await fetch(`${base}/health/config`, { signal: AbortSignal.timeout(10_000) });
  const body = (await r.json()) as { applied?: { tenants?: number } };
  return body.applied?.tenants ?? 0;
}

/** ms until every instance counts at least `count` tenants (checked every 50 ms, up to 120 s) */
async function untilCounted(count: number): Promise<number[]> {
  const t0 = performance.now();
  return Promise.all(
    INSTANCES.map(async (base) => {
      while ((await appliedTenants(base).catch(() => 0)) < count) {
        if (performance.now() - t0 > 120_000)
          throw new Error(`${base} did not count ${count} tenants within 120 s`);
        await new Promise((r) => setTimeout(r, 50));
      }
      return performance.now() - t0;
    }),
  );
}

async function main(): Promise<void> {
  await preflight();
  const tag = runTag();
  const etcd = createEtcdClient({
    endpoints: [`${topology.host}:${topology.etcd.port}`],
    callTimeoutMs: 10_000,
  });
  const key = (i: number) => `${PREFIX}${tag}-${i}`;
  const value = (i: number) =>
    JSON.stringify({ shard: i % 2 === 0 ? 'shard-1' : 'shard-2', status: 'active' });
  const written: string[] = [];
  const inTransactions = async (
    keys: readonly string[],
    op: (k: string, i: number) => unknown,
  ): Promise<void> => {
    for (let i = 0; i < keys.length; i += 100) {
      // an always-true compare: etcd3 builds a transaction from `if`
      await etcd
        .if(`${PREFIX}${tag}`, 'Version', '==', 0)
        .then(...(keys.slice(i, i + 100).map((k, j) => op(k, i + j)) as never[]))
        .commit();
    }
  };
  try {
    const before = Math.max(...(await Promise.all(INSTANCES.map(appliedTenants))));
    const bulk = Array.from({ length: TENANTS }, (_, i) => key(i));
    console.log(`putting ${TENANTS} tenants in transactions of 100 (the directory holds ${before}) …`);
    const t0 = performance.now();
    await inTransactions(bulk, (k, i) => {
      written.push(k);
      return etcd.put(k).value(value(i));
    });
    const bulkMs = performance.now() - t0;
    const bulkCounted = await untilCounted(before + TENANTS);
    console.log(
      `bulk written in ${bulkMs.toFixed(0)} ms; counted by the instances ${bulkCounted.map((ms) => `${ms.toFixed(0)} ms`).join(', ')} later`,
    );
    await new Promise((r) => setTimeout(r, 3_000));

    const answers = INSTANCES.map(() => [] as number[]);
    let polling = true;
    const pollers = INSTANCES.map(async (base, i) => {
      while (polling) {
        const t = performance.now();
        await fetch(`${base}/health`, { signal: AbortSignal.timeout(30_000) })
          .then((r) => r.arrayBuffer())
          .catch(() => undefined);
        answers[i]!.push(performance.now() - t);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    });
    const t1 = performance.now();
    for (let i = TENANTS; i < TENANTS + SINGLE_PUTS; i++) {
      const k = key(i);
      written.push(k);
      await etcd.put(k).value(value(i));
    }
    const putsMs = performance.now() - t1;
    const lastCounted = await untilCounted(before + TENANTS + SINGLE_PUTS);
    await new Promise((r) => setTimeout(r, 2_000));
    polling = false;
    await Promise.all(pollers);

    const perInstance = INSTANCES.map((base, i) => {
      const s = [...answers[i]!].sort((a, b) => a - b);
      return {
        instance: base,
        healthAnswers: s.length,
        p50Ms: percentile(s, 0.5),
        p99Ms: percentile(s, 0.99),
        maxMs: s.at(-1) ?? Number.NaN,
        lastPutCountedAfterMs: lastCounted[i]!,
      };
    });
    console.log(
      `\n${SINGLE_PUTS} single puts at ${before + TENANTS} tenants took ${putsMs.toFixed(0)} ms (${((SINGLE_PUTS / putsMs) * 1000).toFixed(0)}/s)`,
    );
    console.log(
      'instance                 GET /health during the puts: n, p50, p99, max | last put counted after',
    );
    for (const r of perInstance)
      console.log(
        `${r.instance.padEnd(24)} ${r.healthAnswers}, ${r.p50Ms.toFixed(1)} ms, ${r.p99Ms.toFixed(1)} ms, ${r.maxMs.toFixed(1)} ms | ${r.lastPutCountedAfterMs.toFixed(0)} ms`,
      );
    const date = new Date().toISOString();
    const file = writeResultFile(
      join(REPO_ROOT, 'bench', 'results'),
      { date, sha: git().sha, suffix: '-config-scale' },
      {
        date,
        git: git(),
        machine: machine(),
        tenants: before + TENANTS,
        bulkMs,
        bulkCounted,
        putsMs,
        perInstance,
      },
    );
    console.log(`\nwritten to ${file}`);
  } finally {
    console.log(`deleting the ${written.length} tenants of this run …`);
    await inTransactions(written, (k) => etcd.delete().key(k));
    etcd.close();
  }
}

main().catch((error: unknown) => {
  console.error(
    `config-scale failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exit(1);
});
