/**
 * `npm run bench` — shardgate against the physical ceiling of this box, side by side in one run
 * (issue "benchmarks"). Needs the local stack up (`npm run stack -- up`); starts and stops its own
 * ceiling (bench/ceiling.ts) and puts etcd `cache/enabled` and `cache/near_max_entries` back to
 * the values it found.
 *
 * 1. setup, not measured: tenants tagged with this run's id, members and books through the API;
 * 2. every scenario of bench/scenarios.ts: 1 s warm-up through HAProxy, then a closed-loop
 *    autocannon run through HAProxy (:8080) and one directly against api-1 (:8101);
 *    The ceiling, the headline reads and borrow + return run through HAProxy once more with
 *    Debian's `wrk` (bench/wrk.ts), a generator in C, as a cross-check;
 * 3. the headline reads (cached book from Redis and from the near cache, through HAProxy) again
 *    at a constant 70 % of the maximum just measured: once with autocannon `overallRate`, once
 *    evenly paced (bench/load.ts); the ceiling and borrow + return (with email, through HAProxy)
 *    evenly paced at 70 % of their own maximum as well;
 * 4. the tables and the targets on stdout, JSON into bench/results/<date>-<sha>.json.
 *
 * Environment: BENCH_SECONDS (default 6) per measured run; BENCH_CONSTANT_SECONDS (default the
 * larger of that and 8) per constant-rate run; BENCH_RESULTS_DIR (default bench/results) for the
 * JSON; BENCH_KEEP_TENANTS=1 keeps this run's tenants in the etcd directory afterwards (default:
 * removed; their rows stay on the shards).
 */
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { stopProcess } from '../stack/process-manager.js';
import { up } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import {
  type ApiSide,
  apiSide,
  CACHE_KEYS,
  DIRECT,
  drainOutbox,
  HAPROXY,
  INSTANCES,
  instanceMetrics,
  metricByLabel,
  type Probe,
  preflight,
  probe,
  setCache,
} from './api-state.js';
import { type Ceiling, startCeiling } from './ceiling.js';
import { cpuBetween, snapshot } from './cpu-usage.js';
import { etcdDel, remember } from './etcd.js';
import { historyLine, hostRank, readHistory } from './history.js';
import { type InProcessWrites, openInProcessWrites } from './in-process-writes.js';
import { closedLoop, type LoadResult, paced } from './load.js';
import { git, machine, rssMiB, stackPid, versions } from './machine.js';
import {
  adjacentText,
  apiText,
  cpuTable,
  type Mode,
  type Row,
  table,
  targets,
  targetTable,
} from './report.js';
import { writeResultFile } from './result-file.js';
import { hotBookRequest, pacedLending, type Scenario, scenarios } from './scenarios.js';
import { ApiClient, createFixtures, FIXTURE_COUNTS, runTag } from './setup.js';
import { wrk, wrkLending } from './wrk.js';

const H = topology.host;
const API_1 = topology.apis[0]!.id;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 6);
const WARMUP_SECONDS = 1;
const CONSTANT_SECONDS = Number(process.env.BENCH_CONSTANT_SECONDS ?? Math.max(SECONDS, 8));
const RESULTS_DIR = process.env.BENCH_RESULTS_DIR ?? join(REPO_ROOT, 'bench', 'results');
const log = (s: string) => console.log(s);

type Counts = Record<string, number>;

/** the cached book read, from Redis and from the near cache: also run at 70 % of their maximum */
const HEADLINE_READS = ['book-hit', 'book-near'];
/** borrow + return with email, through HAProxy: also run paced at 70 % of its maximum */
const PACED_WRITES = 'loans';

/** share of hit / miss / bypass among the cache lookups the instances counted during a run */
function cacheShares(before: Counts, after: Counts): string | undefined {
  const diff = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  const total = diff('hit') + diff('miss') + diff('bypass');
  if (total <= 0) return undefined;
  return ['hit', 'miss', 'bypass']
    .filter((k) => diff(k) > 0)
    .map((k) => `${k} ${((diff(k) / total) * 100).toFixed(1)} %`)
    .join(', ');
}

/** what the cache must report during a scenario's runs when nobody else touches the stack */
const CACHE_EXPECTED: Record<string, 'hit' | 'bypass'> = {
  'book-hit': 'hit',
  'book-near': 'hit',
  'book-uncached': 'bypass',
  list: 'bypass',
};

function checkText(
  s: Scenario,
  before: Counts,
  after: Counts,
  near: { before: Counts; after: Counts },
  p?: Probe,
  r?: LoadResult,
  api?: ApiSide,
) {
  const parts: string[] = [];
  if (s.key in CACHE_EXPECTED || s.kind === 'mixed') {
    const shares = cacheShares(before, after);
    if (shares) parts.push(`cache ${shares}`);
  }
  if (s.near) {
    const sum = (c: Counts) => Object.values(c).reduce((a, b) => a + b, 0);
    const hits = (after.hit ?? 0) - (before.hit ?? 0);
    const nearHits = sum(near.after) - sum(near.before);
    if (hits > 0) parts.push(`from the near cache ${((nearHits / hits) * 100).toFixed(1)} % of hits`);
  }
  if (p?.readFrom) parts.push(`X-Read-From: ${p.readFrom}`);
  if (r?.generatorLag) parts.push(`generator late p99 ${r.generatorLag.p99.toFixed(1)} ms`);
  if (api) parts.push(apiText(api));
  return parts.join('; ') || undefined;
}

/**
 * Why a run's numbers are not this scenario's alone: requests from elsewhere reached the API
 * (counted by its own request histogram), or the cache was switched by someone else meanwhile.
 */
function disturbance(
  s: Scenario,
  r: LoadResult,
  connections: number,
  seen: { before: Counts; after: Counts },
  cache: { before: Counts; after: Counts },
  /** the bench's own /metrics reads inside the window, per instance */
  scrapes = 2,
): string | undefined {
  const sum = (c: Counts) => Object.values(c).reduce((a, b) => a + b, 0);
  // the ceiling and the in-process writes send the API nothing
  const ours = s.kind === 'ceiling' || s.inProcess ? 0 : r.requests + r.socketErrors;
  // slack: the bench's own /metrics reads, HAProxy's health checks, requests in flight at the end
  const foreign = sum(seen.after) - sum(seen.before) - ours - scrapes * INSTANCES.length - connections;
  const reasons: string[] = [];
  if (foreign > Math.max(50, ours * 0.01)) reasons.push(`${foreign} requests from elsewhere reached the API`);
  const expected = CACHE_EXPECTED[s.key];
  if (expected) {
    const diff = (k: string) => (cache.after[k] ?? 0) - (cache.before[k] ?? 0);
    const total = diff('hit') + diff('miss') + diff('bypass');
    if (total > 0 && diff(expected) / total < 0.99)
      reasons.push(`cache answered ${expected} for only ${((diff(expected) / total) * 100).toFixed(0)} %`);
  }
  return reasons.length > 0 ? reasons.join('; ') : undefined;
}

async function main(): Promise<void> {
  await preflight();
  // the numbers are only this code's when nothing else runs: look at the machine for a second
  const quiet0 = snapshot();
  await new Promise((r) => setTimeout(r, 1000));
  const quiet = cpuBetween(quiet0, snapshot());
  if (quiet.machine.idle < 85)
    console.warn(
      `bench: WARNING the machine is busy before the run (${quiet.machine.idle} % idle; ` +
        `processes outside the stack and this bench: ${quiet.other} % of a core); expect noisy numbers`,
    );
  const started = new Date();
  const tag = runTag();
  const gitInfo = git();
  const machineBefore = machine();
  const api1Pid = stackPid(API_1);
  const rssIdle = rssMiB(api1Pid);
  const restoreCache = await remember(CACHE_KEYS);
  const api = new ApiClient(HAPROXY, INSTANCES);
  const rows: Row[] = [];
  let ceiling: Ceiling | undefined;
  let inProcess: InProcessWrites | undefined;
  let cleaned = false;
  /** stack processes a scenario stopped and that are not running again yet */
  const stopped = new Set<string>();
  const restartStopped = async () => {
    if (stopped.size === 0) return;
    await up({ log: () => {} });
    stopped.clear();
  };
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    await restartStopped().catch((e: unknown) =>
      console.error(`bench: could not start the stack's stopped processes again: ${String(e)}`),
    );
    await restoreCache().catch((e: unknown) =>
      console.error(`bench: could not restore ${CACHE_KEYS.join(' and ')}: ${String(e)}`),
    );
    await ceiling?.stop();
    await inProcess?.close();
    if (process.env.BENCH_KEEP_TENANTS !== '1')
      await etcdDel(`tenants/${tag}-`, { prefix: true }).catch(() => {});
  };
  process.once('SIGINT', () => {
    console.error('\nbench: interrupted, cleaning up');
    void cleanup().finally(() => process.exit(130));
  });

  try {
    log(`bench run ${tag}: git ${gitInfo.sha}${gitInfo.dirty ? ' (dirty)' : ''}, ${SECONDS} s per run`);
    ceiling = await startCeiling({ host: H });
    log(
      `ceiling: ${ceiling.direct} (node:http) and ${ceiling.haproxy} (a second HAProxy, the stack's config)`,
    );
    const t0 = Date.now();
    const c = FIXTURE_COUNTS;
    log(`setup: ${c.tenants} tenants, ${c.members} members (argon2id: slow on purpose), ${c.books} books …`);
    const fixtures = await createFixtures(api, tag);
    log(`setup done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);

    const ceilingRps: Partial<Record<Row['via'], number>> = {};
    /** the ceiling through HAProxy under wrk: what the wrk rows' ratio is taken against */
    let ceilingWrkRps: number | undefined;
    const ceilingPids = (s: Scenario): Record<string, number> =>
      s.kind === 'ceiling'
        ? { 'ceiling-server': ceiling!.pids.server, 'ceiling-haproxy': ceiling!.pids.haproxy }
        : {};
    const measure = async (s: Scenario, via: Row['via'], mode: Mode, run: () => Promise<LoadResult>) => {
      const p =
        s.probe && mode === 'closed loop'
          ? await probe(via === 'haproxy' ? HAPROXY : DIRECT, s.probe)
          : undefined;
      const before = await metricByLabel('cache_requests_total', 'result');
      const nearBefore = await metricByLabel('cache_near_hits_total', 'instance');
      const seenBefore = await metricByLabel('http_request_duration_seconds_count', 'instance');
      // paced book reads: the instances' own view, scraped last before the run (which also
      // resets their event-loop lag maximum) and first after it
      const inside = mode === 'paced' && s.kind === 'read';
      const view0 = inside ? await Promise.all(INSTANCES.map(instanceMetrics)) : undefined;
      const cpu0 = snapshot();
      const r = await run();
      const cpu = cpuBetween(cpu0, snapshot(), ceilingPids(s));
      const view1 = inside ? await Promise.all(INSTANCES.map(instanceMetrics)) : undefined;
      const api = view0 && view1 ? apiSide(view0, view1) : undefined;
      const seenAfter = await metricByLabel('http_request_duration_seconds_count', 'instance');
      const after = await metricByLabel('cache_requests_total', 'result');
      const nearAfter = await metricByLabel('cache_near_hits_total', 'instance');
      const connections = mode === 'paced' ? 32 : mode === 'autocannon overallRate' ? 16 : s.connections;
      if (s.kind === 'ceiling' && mode === 'closed loop') ceilingRps[via] = r.rps;
      if (s.kind === 'ceiling' && mode === 'wrk') ceilingWrkRps = r.rps;
      const row: Row = {
        ...r,
        key: s.key,
        scenario: s.name,
        kind: s.kind,
        via,
        mode,
        connections,
        // the in-process writes have no HTTP ceiling to compare with (their ratio: targets())
        ratio:
          via === 'in-process'
            ? Number.NaN
            : r.rps / ((mode === 'wrk' ? ceilingWrkRps : ceilingRps[via]) ?? r.rps),
        ...(api ? { api } : {}),
        check: checkText(s, before, after, { before: nearBefore, after: nearAfter }, p, r, api),
        cpu,
        disturbed: disturbance(
          s,
          r,
          connections,
          { before: seenBefore, after: seenAfter },
          { before, after },
          inside ? 4 : 2, // paced book reads: the instances' view is scraped twice more
        ),
        note: s.note,
      };
      rows.push(row);
      log(
        `  ${s.name} via ${via}${mode === 'closed loop' ? '' : `, ${mode}`}: ${r.rps.toFixed(0)} req/s, ` +
          `p99 ${r.p99.toFixed(1)} ms, errors ${r.errors}${row.check ? `; ${row.check}` : ''}` +
          `${row.disturbed ? `; DISTURBED: ${row.disturbed}` : ''}`,
      );
      return row;
    };

    const all = scenarios(fixtures);
    const ceilingSteps = all.find((x) => x.kind === 'ceiling')!.steps;
    for (const s of all) {
      if (s.cache !== undefined) await setCache(s.cache, hotBookRequest(fixtures), INSTANCES, s.near);
      const base = (via: 'haproxy' | 'direct') =>
        s.kind === 'ceiling' ? ceiling![via] : via === 'haproxy' ? HAPROXY : DIRECT;
      for (const name of s.stops ?? []) {
        stopped.add(name);
        await stopProcess(name);
      }
      if (s.inProcess) {
        // the write path without HTTP: the bench process writes through the data layer itself
        inProcess ??= await openInProcessWrites(fixtures.lenders);
        const writes = inProcess;
        await writes.run({ inFlight: s.connections, seconds: WARMUP_SECONDS });
        await measure(s, 'in-process', 'closed loop', () =>
          writes.run({ inFlight: s.connections, seconds: SECONDS }),
        );
      } else {
        await closedLoop(base('haproxy'), s.steps, { connections: s.connections, seconds: WARMUP_SECONDS });
        // the headline reads also get the ceiling through HAProxy measured right before and right
        // after their closed loop: the machine's speed drifts within a run, and this ratio does not
        // depend on how fast it was when the run started
        const adjacent = HEADLINE_READS.includes(s.key);
        const ceilingNow = async () =>
          (await closedLoop(ceiling!.haproxy, ceilingSteps, { connections: 32, seconds: SECONDS })).rps;
        for (const via of ['haproxy', 'direct'] as const) {
          const before = adjacent && via === 'haproxy' ? await ceilingNow() : undefined;
          const row = await measure(s, via, 'closed loop', () =>
            closedLoop(base(via), s.steps, { connections: s.connections, seconds: SECONDS }),
          );
          if (before !== undefined) {
            row.adjacentCeiling = { before, after: await ceilingNow() };
            const text = adjacentText(row);
            row.check = row.check ? `${row.check}; ${text}` : text;
            log(`    ${text}`);
          }
        }
      }
      if (s.stops) {
        const t = Date.now();
        await restartStopped();
        const left = await drainOutbox();
        log(
          `  (${s.stops.join(', ')} started again; outbox ${left === 0 ? 'empty' : `still ${left} rows`} after ${((Date.now() - t) / 1000).toFixed(0)} s)`,
        );
      }
      if (s.inProcess) continue;
      if (s.kind === 'ceiling' || HEADLINE_READS.includes(s.key)) {
        // the same closed loop through HAProxy with wrk: the ratio to the ceiling with a
        // generator that costs the box far less CPU than autocannon (shown, not judged)
        const req = s.kind === 'ceiling' ? { path: '/health' } : hotBookRequest(fixtures);
        await measure(s, 'haproxy', 'wrk', () =>
          wrk(base('haproxy'), req, { connections: s.connections, seconds: SECONDS }),
        );
      }
      if (s.key === 'loans') {
        // borrow + return once more with wrk: the write rate when the generator's share of the
        // two cores is a C program's (shown beside the write verdicts, not judged)
        await measure(s, 'haproxy', 'wrk', () =>
          wrkLending(base('haproxy'), fixtures.lenders, { connections: s.connections, seconds: SECONDS }),
        );
      }
      const max = rows.find((r) => r.key === s.key && r.via === 'haproxy' && r.mode === 'closed loop')!;
      const rate = Math.round(max.rps * 0.7);
      if (s.kind === 'ceiling') {
        // the same open-loop measure for the bare server at 70 % of its own maximum: the tail
        // this box gives at that load with no application at all, for comparison
        const open = await measure(s, 'haproxy', 'paced', () =>
          paced(ceiling!.haproxy, { path: '/health' }, { rate, seconds: CONSTANT_SECONDS, sockets: 32 }),
        );
        open.targetRate = rate;
        continue;
      }
      if (s.key === PACED_WRITES) {
        // the writes at a constant 70 % of their maximum: the latency at a load the box keeps up
        // with, where the closed loop's p99 is its 32 connections queueing (Little's law)
        const open = await measure(s, 'haproxy', 'paced', () =>
          paced(HAPROXY, pacedLending(fixtures), { rate, seconds: CONSTANT_SECONDS, sockets: 32 }),
        );
        open.targetRate = rate;
        continue;
      }
      if (!HEADLINE_READS.includes(s.key)) continue;
      // the headline reads at a constant 70 % of the maximum just measured, through HAProxy
      const autocannonRate = await measure(s, 'haproxy', 'autocannon overallRate', () =>
        closedLoop(HAPROXY, s.steps, { connections: 16, seconds: CONSTANT_SECONDS, overallRate: rate }),
      );
      autocannonRate.targetRate = rate;
      const open = await measure(s, 'haproxy', 'paced', () =>
        paced(HAPROXY, hotBookRequest(fixtures), { rate, seconds: CONSTANT_SECONDS, sockets: 32 }),
      );
      open.targetRate = rate;
    }
    // every instance reports the backlog of every shard: ask one
    const backlog = await metricByLabel('outbox_backlog', 'shard', [DIRECT]);
    await cleanup();

    const rssAfter = rssMiB(api1Pid);
    const report = {
      date: started.toISOString(),
      git: gitInfo,
      run: tag,
      machine: {
        ...machine(),
        loadavg1mBefore: machineBefore.loadavg1m,
        idleBeforePercent: quiet.machine.idle,
      },
      versions: versions(),
      settings: {
        secondsPerRun: SECONDS,
        warmupSeconds: WARMUP_SECONDS,
        constantRateSeconds: CONSTANT_SECONDS,
      },
      apiRssMiB: { instance: API_1, pid: api1Pid, idle: rssIdle, afterRun: rssAfter },
      outboxBacklogAfterRun: backlog,
      rows,
      targets: targets(rows),
    };
    const file = writeResultFile(RESULTS_DIR, { date: report.date, sha: gitInfo.sha }, report);

    const m = report.machine;
    const v = report.versions;
    log(
      `\n${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, Linux ${m.kernel}; load ${m.loadavg1mBefore} → ${m.loadavg1m}\n` +
        `node ${v.node}; ${v.mariadb}; ${v.haproxy}; ${v.redis}\n` +
        `git ${gitInfo.sha}${gitInfo.dirty ? ' (dirty)' : ''}; ${SECONDS} s per closed-loop run, ${CONSTANT_SECONDS} s per constant-rate run\n`,
    );
    log(table(rows));
    log(`\nwhere the CPU went during each run (% of one core; machine: % of all ${m.cpus} cores):\n`);
    log(cpuTable(rows));
    log(
      `\n${API_1} resident memory (VmRSS): ${rssIdle ?? '?'} MiB idle, ${rssAfter ?? '?'} MiB after the run`,
    );
    const pending = Object.values(backlog).reduce((a, b) => a + b, 0);
    log(`outbox rows not yet relayed to RabbitMQ when the run ended: ${pending}\n`);
    log(targetTable(report.targets));
    // the host's speed moves the rates more than most changes do: place this run among those kept
    try {
      const rank = hostRank(historyLine(report), readHistory(RESULTS_DIR).lines);
      if (rank) log(`\n${rank} (npx tsx bench/history.ts)`);
    } catch (error) {
      log(`\nthe other runs in ${RESULTS_DIR} could not be read: ${(error as Error).message}`);
    }
    log(`\nwritten to ${file}`);
  } finally {
    await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exit(1);
});
