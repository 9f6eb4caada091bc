/** `npm run migrate [-- args]` as an operator runs it, with the local stack's environment. */
import { spawn, spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../../stack/paths.js';
import { stackEnv } from '../../stack/stack-env.js';

const ARGS = ['--import', 'tsx', 'src/db/migrate-cli.ts'];
const TIMEOUT_MS = 60_000;

export interface MigrateRun {
  code: number;
  stdout: string;
  stderr: string;
}

export function runMigrate(args: string[]): MigrateRun {
  const r = spawnSync(process.execPath, [...ARGS, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stackEnv() },
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The same without blocking the test's event loop (which may have to act meanwhile); -1: killed at 60 s. */
export function runMigrateAsync(args: string[]): Promise<MigrateRun> {
  const child = spawn(process.execPath, [...ARGS, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stackEnv() },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    }),
  );
}
