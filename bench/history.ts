/**
 * Every full `npm run bench` kept in a results folder, one line each, oldest first: the host, the
 * ceiling, the headline read and the writes, and how many targets the run met.
 * `npx tsx bench/history.ts [--since <ISO date>] [dir]` prints the table, how often each target
 * was met, and how closely the write rate followed the host's speed (default folder
 * `bench/results`, or `BENCH_RESULTS_DIR`). `--write-readme` puts the same report of every run in
 * `bench/results` into `bench/README.md`, between the two markers of "Every full run"
 * (`README_MARKERS`); `bench/history.test.ts` fails while the README differs from it.
 *
 * A full run is a JSON with `rows` that carry scenario keys (bench/run.ts); the other files of
 * the folder (cost.ts, profile.ts, data-path.ts, write-latency.ts) and runs from before the keys
 * are skipped and counted. A value a run did not measure (the near cache and the paced ceiling
 * came later) is shown as –. Nothing is judged again: the verdicts are the ones the run wrote.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  adjacentRatio,
  cpuMsPerRequest,
  findRow,
  type Mode,
  ms,
  pct,
  type Row,
  type Target,
} from './report.js';

export interface BenchResult {
  date: string;
  git: { sha: string; dirty: boolean };
  machine: { cpuModel: string };
  rows: Row[];
  targets?: Target[];
}

/** `adjacent`: of the mean of the ceilings right before and after the read */
export interface ReadLine {
  rps: number;
  ratio: number;
  adjacent?: number;
  pacedP99?: number;
}

export interface HistoryLine {
  date: string;
  sha: string;
  host: string;
  ceiling?: number;
  /** the cached read from Redis: closed-loop rate, its share of the ceiling, paced p99 at 70 % */
  redisRead?: ReadLine;
  barePacedP99?: number;
  /** the same read from the near cache */
  nearRead?: ReadLine;
  /** `ratio`: of the ceiling through HAProxy in the same run */
  writes?: {
    rps: number;
    ratio?: number;
    p99: number;
    workerStopped?: number;
    cpuMs?: number;
    /** the same closed loop with wrk as the generator (later runs) */
    wrkRps?: number;
  };
  /** the verdicts as the run wrote them; empty for a run from before the verdicts */
  targets: Target[];
  errors: number;
  disturbed: boolean;
}

/** a full run of bench/run.ts: rows keyed by scenario, with the ceiling through HAProxy */
export function isFullRun(data: unknown): data is BenchResult {
  if (typeof data !== 'object' || data === null) return false;
  const rows = (data as { rows?: unknown }).rows;
  return (
    Array.isArray(rows) &&
    rows.some((r: Partial<Row>) => r.key === 'ceiling' && r.via === 'haproxy') &&
    typeof (data as BenchResult).git?.sha === 'string'
  );
}

export function historyLine(result: BenchResult): HistoryLine {
  const find = (key: string, mode?: Mode) => findRow(result.rows, key, 'haproxy', mode);
  const ceiling = find('ceiling');
  const read = (key: string) => {
    const closed = find(key);
    if (!closed || !ceiling) return undefined;
    return {
      rps: closed.rps,
      ratio: closed.rps / ceiling.rps,
      adjacent: adjacentRatio(closed),
      pacedP99: find(key, 'paced')?.p99,
    };
  };
  const writes = find('loans');
  const host = result.machine.cpuModel;
  return {
    date: result.date,
    sha: result.git.sha + (result.git.dirty ? '+' : ''),
    host: /intel/i.test(host) ? 'Intel' : /amd/i.test(host) ? 'AMD' : host,
    ceiling: ceiling?.rps,
    redisRead: read('book-hit'),
    barePacedP99: find('ceiling', 'paced')?.p99,
    nearRead: read('book-near'),
    writes: writes && {
      rps: writes.rps,
      ratio: ceiling && writes.rps / ceiling.rps,
      p99: writes.p99,
      workerStopped: find('loans-mail-off')?.rps,
      cpuMs: cpuMsPerRequest(writes),
      wrkRps: find('loans', 'wrk')?.rps,
    },
    targets: result.targets ?? [],
    errors: result.rows.reduce((a, r) => a + r.errors, 0),
    disturbed: result.rows.some((r) => r.disturbed),
  };
}

const dash = '–';
const num = (v: number | undefined) => (v === undefined ? dash : v.toFixed(0));
const msOr = (v: number | undefined) => (v === undefined ? dash : ms(v));

function readCell(r: ReadLine | undefined): string {
  if (!r) return dash;
  return `${pct(r.ratio)}${r.adjacent === undefined ? '' : ` (${pct(r.adjacent)})`}`;
}

export function historyTable(lines: readonly HistoryLine[]): string {
  const head =
    '| run (UTC) | git | host | ceiling via HAProxy | cached read from Redis: req/s | of ceiling (next to it) | paced p99: Redis / bare server | near cache: of ceiling (next to it) | its paced p99 | borrow + return via HAProxy (with wrk) | of ceiling | p99 | worker stopped | CPU per write | targets met | errors |\n' +
    '|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|';
  const body = lines.map((l) =>
    [
      `${l.date.slice(0, 16).replace('T', ' ')}${l.disturbed ? ' (disturbed)' : ''}`,
      `\`${l.sha}\``,
      l.host,
      num(l.ceiling),
      num(l.redisRead?.rps),
      readCell(l.redisRead),
      `${msOr(l.redisRead?.pacedP99)} / ${msOr(l.barePacedP99)}`,
      readCell(l.nearRead),
      msOr(l.nearRead?.pacedP99),
      `${num(l.writes?.rps)}${l.writes?.wrkRps === undefined ? '' : ` (${num(l.writes.wrkRps)})`}`,
      l.writes?.ratio === undefined ? dash : `${(l.writes.ratio * 100).toFixed(1)} %`,
      msOr(l.writes?.p99),
      num(l.writes?.workerStopped),
      l.writes?.cpuMs === undefined ? dash : `${ms(l.writes.cpuMs)} ms`,
      l.targets.length > 0 ? `${l.targets.filter((t) => t.met).length} of ${l.targets.length}` : dash,
      String(l.errors),
    ].join(' | '),
  );
  return [head, ...body.map((b) => `| ${b} |`)].join('\n');
}

/**
 * How often each target was met over `lines`, in the order the targets first appear. A target is
 * counted by its wording, so a target whose wording changed between versions of the bench
 * appears once per wording.
 */
export function targetTally(lines: readonly HistoryLine[]): { what: string; met: number; of: number }[] {
  const tally = new Map<string, { met: number; of: number }>();
  for (const line of lines)
    for (const t of line.targets) {
      const entry = tally.get(t.what) ?? { met: 0, of: 0 };
      entry.of += 1;
      if (t.met) entry.met += 1;
      tally.set(t.what, entry);
    }
  return [...tally].map(([what, v]) => ({ what, ...v }));
}

export function tallyTable(tally: ReturnType<typeof targetTally>): string {
  return [
    '| target | met in |',
    '|---|--:|',
    ...tally.map((t) => `| ${t.what} | ${t.met} of ${t.of} runs |`),
  ].join('\n');
}

/** Pearson's correlation of paired values; undefined for fewer than 3 pairs or a constant side */
export function correlation(xs: readonly number[], ys: readonly number[]): number | undefined {
  if (xs.length !== ys.length) throw new Error('correlation needs as many x as y values');
  const n = xs.length;
  if (n < 3) return undefined;
  const mean = (v: readonly number[]) => v.reduce((a, x) => a + x, 0) / n;
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : undefined;
}

/**
 * How closely the write rate followed the host's speed (the ceiling through HAProxy) over the
 * runs that measured both: a line for the history's output, or undefined below 3 such runs.
 */
export function hostText(lines: readonly HistoryLine[]): string | undefined {
  const both = lines.filter((l) => l.ceiling !== undefined && l.writes !== undefined);
  const r = correlation(
    both.map((l) => l.ceiling!),
    both.map((l) => l.writes!.rps),
  );
  if (r === undefined) return undefined;
  const cpu = both.filter((l) => l.writes!.cpuMs !== undefined);
  const rCpu = correlation(
    cpu.map((l) => l.ceiling!),
    cpu.map((l) => l.writes!.cpuMs!),
  );
  return (
    `the write rate against the ceiling through HAProxy: Pearson r = ${r.toFixed(2)} over ${both.length} runs` +
    (rCpu === undefined
      ? ''
      : `; the CPU per write against it: r = ${rCpu.toFixed(2)} over ${cpu.length} runs`)
  );
}

/**
 * Where one run's host stood among the other full runs kept (`others`, the run itself left out):
 * how many of them had a slower ceiling through HAProxy, and the write rates of those whose
 * ceiling was within ±10 % of it, the runs its own rates compare with. Undefined when the run has
 * no ceiling through HAProxy.
 */
export function hostRank(run: HistoryLine, others: readonly HistoryLine[]): string | undefined {
  const c = run.ceiling;
  if (c === undefined) return undefined;
  const kept = others.filter((l) => l.ceiling !== undefined && l.date !== run.date);
  if (kept.length === 0)
    return `the ceiling through HAProxy: ${c.toFixed(0)}/s; no other full run kept to compare with`;
  const ceilings = kept.map((l) => l.ceiling!);
  const slower = ceilings.filter((x) => x < c).length;
  const near = kept.filter((l) => Math.abs(l.ceiling! - c) <= c * 0.1 && l.writes !== undefined);
  const rates = near.map((l) => l.writes!.rps);
  return (
    `the ceiling through HAProxy: ${c.toFixed(0)}/s, faster than ${slower} of the ${kept.length} other full runs kept ` +
    `(${Math.min(...ceilings).toFixed(0)}–${Math.max(...ceilings).toFixed(0)}/s); ` +
    (near.length === 0
      ? 'none of them within ±10 % of it'
      : `borrow + return through HAProxy in the ${near.length} of them within ±10 % of it (each with its own code): ` +
        `${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)}/s` +
        (run.writes ? `, in this run ${run.writes.rps.toFixed(0)}/s` : ''))
  );
}

/** The table, the tally and the host's line: what the CLI prints, and what bench/README.md holds. */
export function historyReport(lines: readonly HistoryLine[]): string {
  const host = hostText(lines);
  return [historyTable(lines), tallyTable(targetTally(lines)), ...(host ? [host] : [])].join('\n\n');
}

/** The lines of bench/README.md between which `--write-readme` puts the report of every run. */
export const README_MARKERS = [
  '<!-- bench/history.ts --write-readme: from here -->',
  '<!-- to here -->',
] as const;

/** Where the report sits in `readme`: after the first marker's line, up to the second's. */
function reportSpan(readme: string): { from: number; to: number } {
  const start = readme.indexOf(`${README_MARKERS[0]}\n`);
  const end = start < 0 ? -1 : readme.indexOf(`${README_MARKERS[1]}\n`, start);
  if (end < 0) throw new Error(`bench/README.md lacks the lines ${README_MARKERS.join(' and ')}`);
  return { from: start + README_MARKERS[0].length + 1, to: end };
}

/** The report that `readme` holds between its markers. */
export function readmeReport(readme: string): string {
  const { from, to } = reportSpan(readme);
  return readme.slice(from, to).trim();
}

/** `readme` with `report` between its markers (a blank line on either side). */
export function withReport(readme: string, report: string): string {
  const { from, to } = reportSpan(readme);
  return `${readme.slice(0, from)}\n${report}\n\n${readme.slice(to)}`;
}

/** every full run in `dir`, oldest first, and the names of the JSON files that are not one */
export function readHistory(dir: string): { lines: HistoryLine[]; skipped: string[] } {
  const lines: HistoryLine[] = [];
  const skipped: string[] = [];
  for (const name of readdirSync(dir).filter((n) => n.endsWith('.json'))) {
    let data: unknown;
    try {
      data = JSON.parse(readFileSync(join(dir, name), 'utf8'));
    } catch (error) {
      throw new Error(`${join(dir, name)}: not a readable JSON file (${(error as Error).message})`);
    }
    if (isFullRun(data)) lines.push(historyLine(data));
    else skipped.push(name);
  }
  lines.sort((a, b) => a.date.localeCompare(b.date));
  return { lines, skipped };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const args = process.argv.slice(2);
  const writeAt = args.indexOf('--write-readme');
  const writeReadme = writeAt >= 0;
  if (writeReadme) args.splice(writeAt, 1);
  const at = args.indexOf('--since');
  const since = at >= 0 ? args.splice(at, 2)[1] : undefined;
  if (at >= 0 && (!since || Number.isNaN(Date.parse(since)))) {
    console.error(`--since needs an ISO date, e.g. --since 2026-11-30T14:00 (got ${since ?? 'nothing'})`);
    process.exit(2);
  }
  if (writeReadme && (since || args[0] || process.env.BENCH_RESULTS_DIR)) {
    console.error(
      '--write-readme reports every run in bench/results: no --since, folder or BENCH_RESULTS_DIR',
    );
    process.exit(2);
  }
  const dir =
    args[0] ?? process.env.BENCH_RESULTS_DIR ?? fileURLToPath(new URL('./results/', import.meta.url));
  const { lines: all, skipped } = readHistory(dir);
  const lines = since ? all.filter((l) => l.date >= since) : all;
  if (writeReadme) {
    const readme = fileURLToPath(new URL('./README.md', import.meta.url));
    writeFileSync(readme, withReport(readFileSync(readme, 'utf8'), historyReport(lines)));
    console.log(`bench/README.md: "Every full run" now holds the report of ${lines.length} full runs`);
  } else console.log(historyReport(lines));
  console.log(
    `\n${lines.length} full runs${since ? ` since ${since}` : ''}; ${skipped.length} other files skipped ` +
      '(cost, profiles, data path, write latency, or runs from before scenario keys)',
  );
}
