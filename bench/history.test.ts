import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  type BenchResult,
  correlation,
  type HistoryLine,
  historyLine,
  historyReport,
  historyTable,
  hostRank,
  hostText,
  isFullRun,
  README_MARKERS,
  readHistory,
  readmeReport,
  tallyTable,
  targetTally,
  withReport,
} from './history.js';
import { testRow as row } from './test-row.js';

const cpu = (busyPercent: number) => ({
  processes: { 'api-1': busyPercent / 2, 'shard-1-master': busyPercent / 2 },
  other: 0,
  machine: { user: 50, system: 40, iowait: 0, idle: 10 },
});

function result(over: Partial<BenchResult> = {}): BenchResult {
  return {
    date: '2026-12-01T05:06:01.749Z',
    git: { sha: 'abc1234', dirty: false },
    machine: { cpuModel: 'AMD EPYC' },
    rows: [
      row({ key: 'ceiling', via: 'haproxy', rps: 20_000 }),
      row({ key: 'ceiling', via: 'haproxy', mode: 'paced', rps: 14_000, p99: 6 }),
      row({
        key: 'book-hit',
        via: 'haproxy',
        rps: 10_000,
        adjacentCeiling: { before: 18_000, after: 22_000 },
      }),
      row({ key: 'book-hit', via: 'direct', rps: 15_000 }),
      row({ key: 'book-hit', via: 'haproxy', mode: 'paced', rps: 7_000, p99: 13.3 }),
      row({ key: 'loans', via: 'haproxy', rps: 500, p99: 160, cpu: cpu(180) }),
      row({ key: 'loans', via: 'haproxy', mode: 'paced', rps: 350, p99: 60 }),
      row({ key: 'loans-mail-off', via: 'haproxy', rps: 900, errors: 2 }),
    ],
    targets: [
      { what: 'a', met: true, value: '' },
      { what: 'b', met: false, value: '' },
      { what: 'c', met: true, value: '' },
    ],
    ...over,
  };
}

describe('bench history', () => {
  it('takes each value from the row of its scenario, path and mode', () => {
    const line = historyLine(result());
    expect(line.host).toBe('AMD');
    expect(line.sha).toBe('abc1234');
    expect(line.ceiling).toBe(20_000);
    // the closed loop through HAProxy, not the direct or the paced run
    expect(line.redisRead).toEqual({ rps: 10_000, ratio: 0.5, adjacent: 0.5, pacedP99: 13.3 });
    expect(line.barePacedP99).toBe(6);
    expect(line.nearRead).toBeUndefined();
    expect(line.writes?.rps).toBe(500);
    expect(line.writes?.ratio).toBe(0.025);
    expect(line.writes?.p99).toBe(160);
    expect(line.writes?.workerStopped).toBe(900);
    // 180 % of one core over 500 writes/s
    expect(line.writes?.cpuMs).toBeCloseTo(3.6, 6);
    expect(line.writes?.wrkRps).toBeUndefined();
    expect(line.targets.map((t) => t.met)).toEqual([true, false, true]);
    expect(line.errors).toBe(2);
    expect(line.disturbed).toBe(false);
  });

  it('marks a dirty tree and a disturbed run, and shows what a run did not measure as –', () => {
    const r = result({ git: { sha: 'abc1234', dirty: true }, targets: undefined });
    r.rows[2] = { ...r.rows[2]!, disturbed: 'other requests reached the API' };
    const table = historyTable([historyLine(r)]);
    const cells = table.split('\n')[2]!.split(' | ');
    expect(cells[0]).toBe('| 2026-12-01 05:06 (disturbed)');
    expect(cells[1]).toBe('`abc1234+`');
    // the near cache (not measured): of ceiling and paced p99
    expect(cells[7]).toBe('–');
    expect(cells[8]).toBe('–');
    expect(cells[9]).toBe('500');
    expect(cells[10]).toBe('2.5 %');
    expect(cells[13]).toBe('3.60 ms');
    // no verdicts written
    expect(cells[14]).toBe('–');
    expect(
      historyTable([historyLine(result())])
        .split('\n')[2]!
        .split(' | ')[14],
    ).toBe('2 of 3');
    expect(table.split('\n')[0]!.split(' | ')).toHaveLength(cells.length);
    // a later run also has the writes under wrk, shown beside autocannon's rate
    const withWrk = result();
    withWrk.rows.push(row({ key: 'loans', via: 'haproxy', mode: 'wrk', rps: 640 }));
    expect(historyLine(withWrk).writes?.wrkRps).toBe(640);
    expect(
      historyTable([historyLine(withWrk)])
        .split('\n')[2]!
        .split(' | ')[9],
    ).toBe('500 (640)');
  });

  it('counts each target by its wording over the runs, in the order the targets first appear', () => {
    const a = historyLine(result());
    const b = historyLine(
      result({
        targets: [
          { what: 'b', met: true, value: '' },
          { what: 'a', met: true, value: '' },
          { what: 'd', met: false, value: '' },
        ],
      }),
    );
    const tally = targetTally([a, b, historyLine(result({ targets: undefined }))]);
    expect(tally).toEqual([
      { what: 'a', met: 2, of: 2 },
      { what: 'b', met: 1, of: 2 },
      { what: 'c', met: 1, of: 1 },
      { what: 'd', met: 0, of: 1 },
    ]);
    expect(tallyTable(tally).split('\n')[3]).toBe('| b | 1 of 2 runs |');
  });

  it('reads only full runs from a folder, oldest first', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-history-'));
    try {
      writeFileSync(join(dir, 'b.json'), JSON.stringify(result({ date: '2026-12-01T06:00:00.000Z' })));
      writeFileSync(join(dir, 'a.json'), JSON.stringify(result({ date: '2026-11-30T06:00:00.000Z' })));
      writeFileSync(join(dir, 'a-cost.json'), JSON.stringify({ date: 'x', git: 'abc', results: [] }));
      writeFileSync(join(dir, 'notes.txt'), 'not json');
      writeFileSync(join(dir, 'null.json'), 'null');
      const { lines, skipped } = readHistory(dir);
      expect(lines.map((l) => l.date.slice(0, 10))).toEqual(['2026-11-30', '2026-12-01']);
      expect(skipped.sort()).toEqual(['a-cost.json', 'null.json']);
      // a broken file is named, not skipped: it may be a run cut short
      writeFileSync(join(dir, 'c.json'), '{"rows": [');
      expect(() => readHistory(dir)).toThrow(/c\.json: not a readable JSON file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reads every committed result file, each either a full run or skipped', () => {
    const dir = fileURLToPath(new URL('./results/', import.meta.url));
    const { lines, skipped } = readHistory(dir);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) {
      expect(l.ceiling).toBeGreaterThan(0);
      expect(l.writes?.rps).toBeGreaterThan(0);
    }
    const files = readdirSync(dir).filter((n) => n.endsWith('.json'));
    expect(lines.length + skipped.length).toBe(files.length);
    // the files that are no full run are the other tools' (cost, profile, data path, write latency)
    // and the one run from before the scenario keys
    for (const name of skipped) {
      expect(isFullRun(JSON.parse(readFileSync(join(dir, name), 'utf8')))).toBe(false);
    }
  });
});

describe('the host in the history', () => {
  it('computes Pearson r, and nothing for too few pairs or a constant side', () => {
    expect(correlation([1, 2, 3, 4], [10, 20, 30, 40])).toBeCloseTo(1, 12);
    expect(correlation([1, 2, 3, 4], [40, 30, 20, 10])).toBeCloseTo(-1, 12);
    // x = 1,2,3,4 against y = 1,3,2,4: Σdxdy = 4, Σdx² = Σdy² = 5
    expect(correlation([1, 2, 3, 4], [1, 3, 2, 4])).toBeCloseTo(0.8, 12);
    expect(correlation([1, 2], [1, 2])).toBeUndefined();
    expect(correlation([1, 1, 1], [1, 2, 3])).toBeUndefined();
    expect(() => correlation([1, 2, 3], [1, 2])).toThrow('as many');
  });

  it('relates the write rate and the CPU per write to the ceiling over the runs that have both', () => {
    const run = (ceiling: number, writes: number, busy: number) => {
      const r = result();
      r.rows = r.rows.map((x) =>
        x.key === 'ceiling' && x.mode === 'closed loop'
          ? { ...x, rps: ceiling }
          : x.key === 'loans' && x.mode === 'closed loop'
            ? { ...x, rps: writes, cpu: cpu(busy) }
            : x,
      );
      return historyLine(r);
    };
    const lines = [run(10_000, 300, 180), run(20_000, 600, 180), run(30_000, 900, 180)];
    // the same busy share over rates of 300, 600 and 900/s: CPU per write 6, 3 and 2 ms, whose
    // deviations (7/3, −2/3, −5/3) against the ceiling's (−10k, 0, 10k) give r = −40 / √(200 · 26/3)
    expect(hostText(lines)).toBe(
      'the write rate against the ceiling through HAProxy: Pearson r = 1.00 over 3 runs; the CPU per write against it: r = -0.96 over 3 runs',
    );
    const noWrites = historyLine(result({ rows: result().rows.filter((x) => !x.key.startsWith('loans')) }));
    expect(hostText([...lines.slice(0, 2), noWrites])).toBeUndefined();
  });
});

describe('the report in bench/README.md', () => {
  const [from, to] = README_MARKERS;

  it('replaces only the text between the two markers, and names them when one is missing', () => {
    const readme = `# head\n\n${from}\n\nold table\n\n${to}\n\n### Files\n`;
    const updated = withReport(readme, 'new table\n\nnew tally');
    expect(updated).toBe(`# head\n\n${from}\n\nnew table\n\nnew tally\n\n${to}\n\n### Files\n`);
    expect(readmeReport(updated)).toBe('new table\n\nnew tally');
    expect(withReport(updated, 'new table\n\nnew tally')).toBe(updated);
    expect(() => readmeReport('# head\n\nold table\n')).toThrow(from);
    expect(() => readmeReport(`${to}\n${from}\n`)).toThrow(to);
  });

  it('holds the report of every full run committed in bench/results (npx tsx bench/history.ts --write-readme)', () => {
    const { lines } = readHistory(fileURLToPath(new URL('./results/', import.meta.url)));
    const readme = readFileSync(fileURLToPath(new URL('./README.md', import.meta.url)), 'utf8');
    expect(
      readmeReport(readme),
      'bench/README.md is behind bench/results: npx tsx bench/history.ts --write-readme',
    ).toBe(historyReport(lines));
  });
});

describe('one run among the others kept', () => {
  let minute = 0;
  const line = (ceiling: number | undefined, writes?: number): HistoryLine => ({
    date: `2026-12-01T10:${String(minute++).padStart(2, '0')}:00.000Z`,
    sha: 'abc1234',
    host: 'AMD',
    ceiling,
    writes: writes === undefined ? undefined : { rps: writes, p99: 100 },
    targets: [],
    errors: 0,
    disturbed: false,
  });

  it('counts the slower hosts and shows the write rates of the runs within ±10 % of its ceiling', () => {
    const run = line(15_000, 300);
    const others = [
      line(10_000, 200),
      line(14_000, 280),
      line(16_400, 350),
      line(30_000, 900),
      line(undefined, 1),
    ];
    expect(hostRank(run, [...others, run])).toBe(
      'the ceiling through HAProxy: 15000/s, faster than 2 of the 4 other full runs kept (10000–30000/s); ' +
        'borrow + return through HAProxy in the 2 of them within ±10 % of it (each with its own code): 280–350/s, in this run 300/s',
    );
    // 16,600 is more than 10 % above 15,000
    expect(hostRank(run, [line(16_600, 400), line(13_400, 260)])).toBe(
      'the ceiling through HAProxy: 15000/s, faster than 1 of the 2 other full runs kept (13400–16600/s); ' +
        'none of them within ±10 % of it',
    );
  });

  it('says when there is nothing to compare with, and nothing for a run without a ceiling', () => {
    const run = line(15_000, 300);
    expect(hostRank(run, [run])).toBe(
      'the ceiling through HAProxy: 15000/s; no other full run kept to compare with',
    );
    expect(hostRank(line(undefined, 300), [run])).toBeUndefined();
  });
});
