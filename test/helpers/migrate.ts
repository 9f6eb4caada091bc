/** `npm run migrate [-- args]` as an operator runs it, with the local stack's environment. */
import { spawnSync } from 'node:child_process';
import { REPO_ROOT } from '../../stack/paths.js';
import { stackEnv } from '../../stack/stack-env.js';

export function runMigrate(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stackEnv() },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
