/**
 * `npm test`: the whole suite, self-sufficient on a fresh machine of the project's kind.
 *
 * 1. preflight: binaries the stack and the tests need. Missing ones are installed (`apt-get
 *    update` once, `apt-get install -y …`) when running as root on Debian; otherwise the run
 *    stops with the exact apt-get line to run. A distro etcd that the install started on the
 *    stack's port is stopped (it would shadow the stack's own).
 * 2. unit tests (`vitest run --project unit`: memory adapters, no services);
 * 3. the local stack is brought up unless every process already serves; the time it took is
 *    printed. The run "owns" the stack only when none of its processes was running before;
 * 4. integration and fault tests against the real processes (the `integration` project, which
 *    excludes test/lifecycle);
 * 5. the lifecycle test (`stack down` leaves nothing behind; its own vitest project, `lifecycle`).
 *    When the run does not own the stack, it runs with SHARDGATE_TEST_RESTORE_STACK=1 and brings
 *    the stack back afterwards;
 * 6. an owned stack that is still up is stopped — also when its `up` failed half-way;
 * 7. the last line is exactly `N passed, N failed`, summed over every vitest run (their JSON
 *    reports). A run that crashed (no report, or a non-zero exit without a failed test: a file
 *    that failed to load) counts as one failed test; a skipped or todo test counts as failed (both
 *    vitest projects set `allowOnly: false`, so a stray `.only` fails too). Exit code 1 when
 *    anything failed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { foreignPortUsers, missingPackages } from '../stack/preflight.js';
import { down, status, up } from '../stack/stack.js';
import { topology } from '../stack/topology.js';

const reports = mkdtempSync(join(tmpdir(), 'shardgate-test-'));
const totals = { passed: 0, failed: 0, skipped: 0 };
const problems: string[] = [];

function isDebianRoot(): boolean {
  return process.getuid?.() === 0 && existsSync('/etc/debian_version') && existsSync('/usr/bin/apt-get');
}

/** A package's postinst may start a system etcd on :2379 (where policy-rc.d allows it). */
async function stopPackagedEtcd(): Promise<void> {
  if ((await foreignPortUsers([topology.etcd.port])).length === 0) return;
  for (const [cmd, args] of [
    ['systemctl', ['disable', '--now', 'etcd']],
    ['service', ['etcd', 'stop']],
  ] as const) {
    if (spawnSync(cmd, [...args], { stdio: 'ignore' }).status === 0) break;
  }
  const still = await foreignPortUsers([topology.etcd.port]);
  if (still.length > 0) throw new Error(`${still[0]}; stop it and run npm test again`);
}

async function ensurePackages(): Promise<void> {
  const pkgs = missingPackages({ forTests: true });
  if (pkgs.length === 0) return;
  const line = `apt-get update && apt-get install -y ${pkgs.join(' ')}`;
  if (!isDebianRoot()) {
    console.error(`missing Debian packages ${pkgs.join(', ')}; as root run: ${line}`);
    process.exit(1);
  }
  console.log(`installing missing Debian packages: ${pkgs.join(' ')}`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  if (pkgs.includes('etcd-server')) await stopPackagedEtcd();
}

interface VitestReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
}

function vitest(label: string, args: string[], env: Record<string, string> = {}): void {
  const out = join(reports, `${label}.json`);
  console.log(`\n=== vitest: ${label} ===`);
  const r = spawnSync(
    process.execPath,
    [
      join(REPO_ROOT, 'node_modules', 'vitest', 'vitest.mjs'),
      'run',
      ...args,
      '--reporter=default',
      '--reporter=json',
      `--outputFile.json=${out}`,
    ],
    { stdio: 'inherit', cwd: REPO_ROOT, env: { ...process.env, ...env } },
  );
  if (!existsSync(out)) {
    problems.push(`${label}: vitest crashed without a report (exit ${r.status ?? r.signal})`);
    totals.failed += 1;
    return;
  }
  const report = JSON.parse(readFileSync(out, 'utf8')) as VitestReport;
  totals.passed += report.numPassedTests;
  totals.failed += report.numFailedTests;
  // a skipped or todo test is a defect: it fails the run, not just a warning above the last line
  const skipped = report.numPendingTests + report.numTodoTests;
  totals.skipped += skipped;
  totals.failed += skipped;
  if (r.status !== 0 && report.numFailedTests === 0) {
    problems.push(`${label}: vitest exited ${r.status} without a failed test (a file failed to load?)`);
    totals.failed += 1;
  }
}

async function main(): Promise<void> {
  await ensurePackages();
  vitest('unit', ['--project', 'unit']);

  const before = await status();
  const owned = !before.some((r) => r.state === 'running' || r.state === 'stopped');
  try {
    // inside the try: a failed `up` of an owned stack still gets the `down` below
    if (before.every((r) => r.healthy)) {
      console.log('\n=== local stack: already up; using it ===');
    } else {
      const why = owned ? 'started by this run' : 'completing a partial stack';
      console.log(`\n=== local stack: up (${why}) ===`);
      const { seconds, started } = await up();
      console.log(
        `local stack: ${started.length} process(es) started by this run in ${seconds.toFixed(1)} s`,
      );
    }
    vitest('integration', ['--project', 'integration']);
    vitest('lifecycle', ['--project', 'lifecycle'], owned ? {} : { SHARDGATE_TEST_RESTORE_STACK: '1' });
  } finally {
    // anything with a pid file: running, stopped, or dead with leftovers in its process group
    if (owned && (await status()).some((r) => r.state !== 'not started' && r.state !== 'not built')) {
      console.log('\n=== local stack: down (started by this run) ===');
      await down();
    }
  }
}

main()
  .catch((error: unknown) => {
    problems.push(`test run failed: ${error instanceof Error ? error.message : String(error)}`);
    totals.failed += 1;
  })
  .finally(() => {
    rmSync(reports, { recursive: true, force: true });
    console.log('');
    for (const p of problems) console.error(p);
    if (totals.skipped > 0)
      console.error(
        `${totals.skipped} test(s) skipped or todo, counted as failed: a skipped test is a defect`,
      );
    console.log(`${totals.passed} passed, ${totals.failed} failed`);
    process.exit(totals.failed > 0 ? 1 : 0);
  });
