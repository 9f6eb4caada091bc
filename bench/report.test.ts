import { describe, expect, it } from 'vitest';
import type { CpuReport } from './cpu-usage.js';
import { cpuTable, targets } from './report.js';
import { testRow as row } from './test-row.js';

const verdict = (list: ReturnType<typeof targets>, what: RegExp) => list.find((t) => what.test(t.what))?.met;

describe('target verdicts', () => {
  it('judge the cached read against the ceiling of the same run, and the writes by rate and p99', () => {
    const rows = [
      row({ key: 'ceiling', via: 'haproxy', rps: 20000 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 10000 }),
      row({
        key: 'book-hit',
        via: 'haproxy',
        rps: 7000,
        mode: 'paced',
        targetRate: 7000,
        p99: 24.9,
        api: { bookReads: 56000, bookReadsOver25ms: 3, lagMaxMs: 31.25, gcMs: 120 },
      }),
      row({ key: 'book-near', via: 'haproxy', rps: 9999 }),
      row({ key: 'ceiling', via: 'haproxy', rps: 14000, mode: 'paced', targetRate: 14000, p99: 12.5 }),
      row({ key: 'loans', via: 'haproxy', rps: 999, p99: 150 }),
    ];
    const list = targets(rows);
    expect(verdict(list, /from Redis.*≥ 50 %/)).toBe(true);
    expect(verdict(list, /from Redis.*\(paced\)/)).toBe(true);
    expect(verdict(list, /near cache.*≥ 50 %/)).toBe(false);
    expect(list.find((t) => /from Redis.*\(paced\)/.test(t.what))?.value).toContain(
      'the bare server, paced at 70 % of its own max: p99 12.5 ms',
    );
    // the instances' own view is shown beside the verdict, which stays the client's p99
    expect(list.find((t) => /from Redis.*\(paced\)/.test(t.what))?.value).toContain(
      'API: 3 of 56000 handler times over 25 ms, event-loop lag max 31.3 ms, GC 120 ms',
    );
    expect(verdict(list, /1,000\/s/)).toBe(false);
    expect(verdict(list, /p99 < 150/)).toBe(false);
    expect(verdict(list, /0 errors/)).toBe(true);

    // the writes' value shows the same writes in-process (no HTTP) of the same run beside them
    const withCeiling = targets([
      row({ key: 'loans', via: 'haproxy', rps: 300, p99: 200 }),
      row({ key: 'loans-in-process', via: 'in-process', rps: 400, ratio: Number.NaN }),
      row({ key: 'loans-in-process-mail-off', via: 'in-process', rps: 750, ratio: Number.NaN }),
    ]);
    expect(withCeiling.find((t) => /1,000\/s/.test(t.what))?.value).toBe(
      '300/s; the same writes in-process without HTTP: 400/s, of which this is 75 %; without email too: 750/s',
    );
    expect(verdict(withCeiling, /1,000\/s/)).toBe(false);

    // and how many threads waited for a core meanwhile, with the process that waited longest
    const cpu: CpuReport = {
      processes: { 'api-1': 30, 'shard-1-master': 29 },
      other: 0,
      machine: { user: 70, system: 29, iowait: 0, idle: 1 },
      waiting: { processes: { 'api-1': 60, 'shard-1-master': 188.5 }, all: 723.3 },
    };
    expect(targets([row({ key: 'loans', via: 'haproxy', rps: 800, cpu })])[0]?.value).toBe(
      "800/s; meanwhile 7.2 threads waited for a core on average, shard-1-master's longest (6.5 ms for each ms it ran)",
    );

    // the writes paced at 70 % of their maximum are shown beside the p99 verdict, not judged
    const withPaced = targets([
      row({ key: 'loans', via: 'haproxy', rps: 300, p99: 200, connections: 32 }),
      row({ key: 'loans', via: 'haproxy', rps: 210, p99: 40, mode: 'paced', targetRate: 210 }),
    ]);
    expect(withPaced.find((t) => /p99 < 150/.test(t.what))?.value).toBe(
      'p99 200.0 ms with 32 connections; paced at 70 % of that rate (210/s): p99 40.0 ms, 0 errors',
    );
    expect(verdict(withPaced, /p99 < 150/)).toBe(false);

    // the writes under wrk are shown beside both write verdicts, which stay autocannon's
    const writesWrk = targets([
      row({ key: 'loans', via: 'haproxy', rps: 700, p99: 160, connections: 32 }),
      row({ key: 'loans', via: 'haproxy', rps: 1100, p99: 90, mode: 'wrk' }),
    ]);
    expect(writesWrk.find((t) => /1,000\/s/.test(t.what))?.value).toBe('700/s; with wrk: 1100/s');
    expect(verdict(writesWrk, /1,000\/s/)).toBe(false);
    expect(writesWrk.find((t) => /p99 < 150/.test(t.what))?.value).toBe(
      'p99 160.0 ms with 32 connections; with wrk: p99 90.0 ms, 0 errors',
    );
    expect(verdict(writesWrk, /p99 < 150/)).toBe(false);

    const worse = targets([
      row({ key: 'ceiling', via: 'haproxy', rps: 20000 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 9999 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 7000, mode: 'paced', targetRate: 7000, p99: 25 }),
      row({ key: 'loans', via: 'haproxy', rps: 1000, p99: 149, errors: 1, non2xx: 1 }),
    ]);
    expect(verdict(worse, /from Redis.*≥ 50 %/)).toBe(false);

    // against the start-of-run ceiling alone 50 %, but the ceiling measured right next to the read
    // was faster: not met, and both figures are shown
    const drift = targets([
      row({ key: 'ceiling', via: 'haproxy', rps: 20000 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 10000, adjacentCeiling: { before: 24000, after: 22000 } }),
    ]);
    expect(verdict(drift, /from Redis.*≥ 50 %/)).toBe(false);
    expect(drift[0]!.value).toBe(
      '10000 / 20000 req/s = 50 %; the ceiling right before and after it: 24000 and 22000 req/s, of which this is 43 %',
    );
    // the ratio under wrk is shown beside the verdict, which stays autocannon's
    const withWrk = targets([
      row({ key: 'ceiling', via: 'haproxy', rps: 20000 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 9000 }),
      row({ key: 'ceiling', via: 'haproxy', rps: 30000, mode: 'wrk' }),
      row({ key: 'book-hit', via: 'haproxy', rps: 18000, mode: 'wrk' }),
    ]);
    expect(withWrk[0]!.value).toBe('9000 / 20000 req/s = 45 %; with wrk: 18000 / 30000 req/s = 60 %');
    expect(verdict(withWrk, /from Redis.*≥ 50 %/)).toBe(false);
    const steady = targets([
      row({ key: 'ceiling', via: 'haproxy', rps: 20000 }),
      row({ key: 'book-hit', via: 'haproxy', rps: 10000, adjacentCeiling: { before: 19000, after: 20000 } }),
    ]);
    expect(verdict(steady, /from Redis.*≥ 50 %/)).toBe(true);
    expect(verdict(worse, /from Redis.*\(paced\)/)).toBe(false);
    expect(verdict(worse, /near cache/)).toBeUndefined();
    expect(verdict(worse, /1,000\/s/)).toBe(true);
    expect(verdict(worse, /p99 < 150/)).toBe(true);
    expect(verdict(worse, /0 errors/)).toBe(false);
  });

  it('say so when something else touched the stack during a run', () => {
    const list = targets([
      row({ key: 'book-hit', via: 'haproxy', rps: 1, disturbed: '900 requests from elsewhere' }),
    ]);
    expect(list.find((t) => /nothing else touched/.test(t.what))?.value).toContain(
      '900 requests from elsewhere',
    );
  });
});

describe('CPU table', () => {
  it('divides the whole machine’s CPU by the answers', () => {
    const cpu: CpuReport = {
      processes: { 'api-1': 60, 'api-2': 40, 'shard-1-master': 50, bench: 10 },
      other: 10,
      machine: { user: 70, system: 20, iowait: 1, idle: 9 },
    };
    // 170 % of a core over 400 answers/s = 4.25 ms of CPU per answer
    const table = cpuTable([row({ key: 'loans', via: 'haproxy', rps: 400, cpu })]);
    expect(table).toContain('| 100 |'); // API: both instances
    expect(table).toMatch(/\| 4\.25 ms \|$/m);
    expect(table).toMatch(/\| – \| 4\.25 ms \|$/m); // no schedstat: no waiting column value
  });

  it('shows how long threads waited for a core over the whole machine', () => {
    const cpu: CpuReport = {
      processes: { 'api-1': 60 },
      other: 0,
      machine: { user: 30, system: 0, iowait: 0, idle: 70 },
      waiting: { processes: { 'api-1': 120 }, all: 345.4 },
    };
    const table = cpuTable([row({ key: 'loans', via: 'haproxy', rps: 100, cpu })]);
    expect(table.split('\n')[0]).toContain('| waiting for a core |');
    expect(table).toMatch(/\| 345 % \| 6\.00 ms \|$/m);
  });
});
