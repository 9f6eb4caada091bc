/**
 * `dist/` for the stack's Node processes (APIs, worker, lb sync, SMTP sink, `shardgate-ctl init`,
 * migrations): rebuilt with `npm run build` (tsc -p tsconfig.build.json) when the API entry is
 * missing or older than any non-test .ts file under src/, control-plane/ or stack/.
 * Failure mode: a failed build leaves dist/ as it was (scripts/build.mjs compiles into a folder of
 * its own and puts it in place only when it succeeded); its entry is back-dated all the same, so the
 * next `up` builds again instead of running the build before.
 */
import { execFile } from 'node:child_process';
import { existsSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
// types only (erased): the rule itself is loaded from the checkout below, from source and dist alike
import type * as Freshness from '../control-plane/bin/build-freshness.js';
import { REPO_ROOT } from './paths.js';

const run = promisify(execFile);
export const API_ENTRY = join(REPO_ROOT, 'dist', 'src', 'entry', 'node.js');
/** the one freshness rule, shared with the shardgate-ctl launcher (plain JS, so not under dist/) */
const FRESHNESS = join(REPO_ROOT, 'control-plane', 'bin', 'build-freshness.js');

export function distFile(...parts: string[]): string {
  return join(REPO_ROOT, 'dist', ...parts);
}

export async function isStale(): Promise<boolean> {
  const { buildIsStale } = (await import(pathToFileURL(FRESHNESS).href)) as typeof Freshness;
  return buildIsStale(REPO_ROOT);
}

/** Build when stale; resolves true when it built. Throws with tsc's report when the build fails. */
export async function buildIfStale(log: (s: string) => void): Promise<boolean> {
  if (!(await isStale())) return false;
  log('building dist/ (npm run build)');
  try {
    await run('npm', ['run', '-s', 'build'], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    if (existsSync(API_ENTRY)) utimesSync(API_ENTRY, 0, 0);
    const e = error as { stdout?: string; stderr?: string };
    const report = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() || String(error);
    throw new Error(`npm run build failed; fix these and run up again:\n${report}`);
  }
  if (!existsSync(API_ENTRY)) {
    throw new Error(`npm run build succeeded but ${API_ENTRY} is missing: is src/entry/node.ts written yet?`);
  }
  return true;
}
