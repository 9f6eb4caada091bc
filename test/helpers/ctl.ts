/** Run `shardgate-ctl` as an operator would (the package bin), capturing exit code and output. */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const BIN = fileURLToPath(new URL('../../control-plane/bin/shardgate-ctl.js', import.meta.url));

export interface CtlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function ctl(args: string[], env: Record<string, string> = {}): CtlResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 30_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
