/**
 * Issue "benchmarks": `npm run bench` works end to end against the local stack — short runs
 * (1 s closed loop, 2 s constant rate) so it fits in the suite; the numbers themselves are not
 * judged here (timings belong to the bench, not to pass/fail tests). Checked: exit 0, the JSON
 * with machine, versions and git sha, every scenario through HAProxy and directly (the in-process
 * writes, the write path's ceiling, in the bench process), both
 * constant-rate runs, what the API reported (cache hits, replica reads), 0 errors, and that the
 * email worker the bench stops for one scenario runs again afterwards.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../stack/paths.js';
import { runningPid } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';

const dir = mkdtempSync(join(tmpdir(), 'shardgate-bench-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface BenchRow {
  key: string;
  via: string;
  mode: string;
  rps: number;
  requests: number;
  errors: number;
  statusCodes: Record<string, number>;
  targetRate?: number;
  ratio: number;
  check?: string;
  api?: { bookReads: number; lagMaxMs: number };
  adjacentCeiling?: { before: number; after: number };
  disturbed?: string;
  cpu?: { processes: Record<string, number>; waiting?: { processes: Record<string, number>; all: number } };
}

describe('npm run bench', () => {
  it('measures every scenario through HAProxy and directly, writes its JSON, and puts the stack back', () => {
    const workerBefore = runningPid(topology.worker.name);
    expect(workerBefore).toBeDefined();
    const r = spawnSync('npm', ['run', '-s', 'bench'], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, BENCH_SECONDS: '1', BENCH_CONSTANT_SECONDS: '2', BENCH_RESULTS_DIR: dir },
      timeout: 420_000,
    });
    expect(r.status, `${r.stdout}\n${r.stderr}`).toBe(0);
    expect(r.stdout).toContain('| target | measured | verdict |');
    expect(r.stdout).toContain('all CPU per request');
    // the results folder holds this run alone
    expect(r.stdout).toMatch(/the ceiling through HAProxy: \d+\/s; no other full run kept to compare with/);
    expect(r.stdout).toContain('| waiting for a core |');
    expect(r.stdout).toMatch(/threads waited for a core on average, [\w-]+'s longest/);

    const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
    expect(files).toHaveLength(1);
    const report = JSON.parse(readFileSync(join(dir, files[0]!), 'utf8')) as {
      git: { sha: string };
      machine: { cpus: number };
      versions: Record<string, string>;
      rows: BenchRow[];
      targets: { what: string; value: string }[];
    };
    expect(report.git.sha).toMatch(/^[0-9a-f]{7,}$/);
    expect(report.machine.cpus).toBeGreaterThan(0);
    expect(report.versions.node).toBe(process.version);

    const keys = [
      'ceiling',
      'health',
      'book-hit',
      'book-near',
      'book-uncached',
      'list',
      'register',
      'loans',
      'loans-mail-off',
      'mixed',
    ];
    for (const key of keys) {
      for (const via of ['haproxy', 'direct']) {
        const row = report.rows.find((x) => x.key === key && x.via === via && x.mode === 'closed loop');
        expect(row, `${key} via ${via}`).toBeDefined();
        expect(row!.rps, `${key} via ${via}`).toBeGreaterThan(0);
        expect(row!.errors, `${key} via ${via}`).toBe(0);
        expect(row!.disturbed, `${key} via ${via}`).toBeUndefined();
      }
    }
    for (const key of ['book-hit', 'book-near']) {
      const modes = report.rows.filter((x) => x.key === key && x.mode !== 'closed loop').map((x) => x.mode);
      expect(modes.sort(), key).toEqual(['autocannon overallRate', 'paced', 'wrk']);
      const hit = report.rows.find((x) => x.key === key && x.via === 'haproxy')!;
      expect(hit.check, key).toContain('cache hit 100.0 %');
      // the ceiling measured again right before and after the headline read
      expect(hit.adjacentCeiling?.before, key).toBeGreaterThan(0);
      expect(hit.adjacentCeiling?.after, key).toBeGreaterThan(0);
      expect(hit.check, key).toContain('the ceiling right before and after it');
      // the paced row carries the instances' own view: every answer the generator counted was a
      // book read in some instance's handler histogram
      const open = report.rows.find((x) => x.key === key && x.mode === 'paced')!;
      expect(open.api, key).toBeDefined();
      expect(open.api!.bookReads, key).toBeGreaterThanOrEqual(open.requests);
      expect(open.api!.bookReads, key).toBeLessThanOrEqual(open.requests + 10);
      expect(open.api!.lagMaxMs, key).toBeGreaterThan(0);
      expect(open.check, key).toContain('handler times over 25 ms');
    }
    // the cross-check with wrk: the ceiling and both headline reads through HAProxy, 0 errors,
    // and the reads' ratio taken against the ceiling under wrk
    const ceilingWrk = report.rows.find((x) => x.key === 'ceiling' && x.mode === 'wrk');
    expect(ceilingWrk?.via).toBe('haproxy');
    expect(ceilingWrk?.errors).toBe(0);
    for (const key of ['book-hit', 'book-near']) {
      const w = report.rows.filter((x) => x.key === key && x.mode === 'wrk');
      expect(
        w.map((x) => x.via),
        key,
      ).toEqual(['haproxy']);
      expect(w[0]!.errors, key).toBe(0);
      expect(w[0]!.requests, key).toBeGreaterThan(0);
      expect(w[0]!.ratio, key).toBeCloseTo(w[0]!.rps / ceilingWrk!.rps, 6);
      expect(
        report.targets.find((t) =>
          t.what.startsWith(
            `cached book read (${key === 'book-hit' ? 'from Redis' : 'from the near cache'}) through`,
          ),
        )?.value,
        key,
      ).toContain('with wrk: ');
    }
    const ceilingPaced = report.rows.find((x) => x.key === 'ceiling' && x.mode === 'paced');
    expect(ceilingPaced?.errors).toBe(0);
    // borrow + return under wrk (its Lua script) through HAProxy: no borrow or return refused
    // (a return of a loan not borrowed, or with another member's token, would answer 404), and
    // its rate and p99 shown beside both write verdicts
    const loansWrk = report.rows.filter((x) => x.key === 'loans' && x.mode === 'wrk');
    expect(loansWrk.map((x) => x.via)).toEqual(['haproxy']);
    expect(loansWrk[0]!.requests).toBeGreaterThan(0);
    expect(loansWrk[0]!.errors).toBe(0);
    expect(loansWrk[0]!.disturbed).toBeUndefined();
    expect(
      report.targets.find((t) => t.what.startsWith('durable writes (borrow + return)'))?.value,
    ).toContain(`with wrk: ${loansWrk[0]!.rps.toFixed(0)}/s`);
    expect(report.targets.find((t) => t.what === 'durable writes p99 < 150 ms')?.value).toContain(
      'with wrk: p99',
    );
    // borrow + return paced at 70 % of its maximum through HAProxy: borrows and returns both
    // answered (a return only names a loan whose borrow was answered), none refused
    const loansMax = report.rows.find(
      (x) => x.key === 'loans' && x.via === 'haproxy' && x.mode === 'closed loop',
    )!;
    const loansPaced = report.rows.filter((x) => x.key === 'loans' && x.mode === 'paced');
    expect(loansPaced.map((x) => x.via)).toEqual(['haproxy']);
    expect(loansPaced[0]!.targetRate).toBe(Math.round(loansMax.rps * 0.7));
    expect(loansPaced[0]!.errors).toBe(0);
    expect(loansPaced[0]!.statusCodes['201']).toBeGreaterThan(0);
    expect(loansPaced[0]!.statusCodes['200']).toBeGreaterThan(0);
    expect(loansPaced[0]!.disturbed).toBeUndefined();
    expect(report.targets.find((t) => t.what === 'durable writes p99 < 150 ms')?.value).toContain(
      `paced at 70 % of that rate (${loansPaced[0]!.targetRate}/s)`,
    );
    // near hits are counted by both instances; a few reads after a run start may go to Redis
    const near = report.rows.find((x) => x.key === 'book-near' && x.via === 'direct')!;
    expect(Number(/from the near cache ([\d.]+) %/.exec(near.check ?? '')?.[1])).toBeGreaterThan(99);
    expect(report.rows.find((x) => x.key === 'list' && x.via === 'haproxy')!.check).toContain(
      'X-Read-From: replica',
    );
    // the write path's ceiling: the same borrow + return in the bench process, without HTTP
    for (const key of ['loans-in-process', 'loans-in-process-mail-off']) {
      const row = report.rows.find((x) => x.key === key && x.via === 'in-process');
      expect(row, key).toBeDefined();
      expect(row!.rps, key).toBeGreaterThan(0);
      expect(row!.errors, key).toBe(0);
      expect(row!.disturbed, key).toBeUndefined();
    }
    expect(report.rows.filter((x) => x.key.startsWith('loans-in-process')).map((x) => x.via)).toEqual([
      'in-process',
      'in-process',
    ]);
    // every run says how long the stack's threads waited for a core, the API instances included
    for (const row of report.rows) {
      expect(row.cpu?.waiting, `${row.key} ${row.via} ${row.mode}`).toBeDefined();
      expect(Object.keys(row.cpu!.waiting!.processes)).toEqual(
        expect.arrayContaining(['api-1', 'api-2', 'shard-1-master', 'bench']),
      );
    }
    // under a closed loop of writes the box is saturated: threads do wait for a core
    const writes = report.rows.find(
      (x) => x.key === 'loans' && x.via === 'haproxy' && x.mode === 'closed loop',
    )!;
    expect(writes.cpu!.waiting!.all).toBeGreaterThan(0);
    const inProcessOff = report.rows.find((x) => x.key === 'loans-in-process-mail-off')!;
    expect(inProcessOff.cpu?.processes[topology.worker.name] ?? 0).toBeLessThan(5);
    expect(r.stdout).toContain('the same writes in-process without HTTP');
    // the worker was stopped for loans-mail-off: no mail CPU there, and it runs again now
    const off = report.rows.find((x) => x.key === 'loans-mail-off' && x.via === 'haproxy')!;
    expect(off.cpu?.processes[topology.worker.name] ?? 0).toBeLessThan(5);
    const workerAfter = runningPid(topology.worker.name);
    expect(workerAfter).toBeDefined();
    expect(workerAfter).not.toBe(workerBefore);
  });
});
