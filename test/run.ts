/**
 * `npm test`: the whole suite, self-sufficient on a fresh machine of the project's kind.
 * 1. preflight: missing Debian packages are installed when running as root on Debian; otherwise
 *    the run fails with the exact `apt-get install …` line;
 * 2. unit tests (memory adapters, no services);
 * 3. the local stack is brought up unless it already is (and its cold start time is printed);
 * 4. integration and fault tests against the real processes;
 * 5. the lifecycle test (`stack down` leaves nothing behind) — when the stack was already up
 *    before the run, it brings it back up afterwards;
 * 6. what this run started is stopped; the last line is `N passed, N failed`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { DEBIAN_PACKAGES, missingBinaries } from '../stack/preflight.js';
import { down, status, up } from '../stack/stack.js';

const reports = mkdtempSync(join(tmpdir(), 'shardgate-test-'));
let passed = 0;
let failed = 0;
let crashed = false;

function ensurePackages(): void {
  if (missingBinaries().length === 0) return;
  const line = `apt-get install -y ${DEBIAN_PACKAGES}`;
  const isRoot = process.getuid?.() === 0;
  if (!isRoot || !existsSync('/usr/bin/apt-get')) {
    console.error(`missing ${missingBinaries().join(', ')}; run as root: apt-get update && ${line}`);
    process.exit(1);
  }
  console.log(`installing missing packages: ${line}`);
  execFileSync('apt-get', ['update'], { stdio: 'inherit' });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...DEBIAN_PACKAGES.split(' ')], {
    stdio: 'inherit',
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

function vitest(label: string, args: string[], env: Record<string, string> = {}): void {
  const out = join(reports, `${label}.json`);
  console.log(`\n=== ${label} ===`);
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
    console.error(`${label}: vitest produced no report (exit ${r.status})`);
    crashed = true;
    return;
  }
  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    numPassedTests: number;
    numFailedTests: number;
    numTotalTests: number;
    success: boolean;
  };
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  if (r.status !== 0 && report.numFailedTests === 0) {
    console.error(`${label}: vitest exited ${r.status} with no failed test (a file failed to load?)`);
    crashed = true;
  }
}

async function stackIsUp(): Promise<boolean> {
  const rows = await status();
  return rows.every((r) => r.healthy);
}

async function main(): Promise<void> {
  ensurePackages();
  vitest('unit', ['--project', 'unit']);

  const wasUp = await stackIsUp();
  try {
    if (!wasUp) {
      console.log('\n=== local stack: up ===');
      const { seconds } = await up();
      console.log(`stack started by the test run in ${seconds.toFixed(1)} s`);
    } else {
      console.log('\nlocal stack already up; using it');
    }
    vitest('integration', ['--project', 'integration', '--exclude', 'test/lifecycle/**']);
    vitest(
      'lifecycle',
      ['--project', 'integration', 'test/lifecycle/'],
      wasUp ? { SHARDGATE_TEST_RESTORE_STACK: '1' } : {},
    );
  } finally {
    // also after a failed `up`: stop whatever part of the stack it had started
    if (!wasUp && (await status()).some((r) => r.state === 'running')) {
      console.log('\n=== local stack: down ===');
      await down();
    }
  }
}

main()
  .catch((error: unknown) => {
    console.error(`test run failed: ${error instanceof Error ? error.stack : String(error)}`);
    crashed = true;
  })
  .finally(() => {
    if (crashed && failed === 0) failed = 1;
    console.log(`\n${passed} passed, ${failed} failed`);
    process.exit(failed > 0 || crashed ? 1 : 0);
  });
