/** Run `shardgate-ctl` as an operator would (the package bin), capturing exit code and output. */
import { spawn, spawnSync } from 'node:child_process';
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

/** `ctl` without blocking the event loop: requests can run while the command does. */
export function ctlAsync(args: string[], env: Record<string, string> = {}): Promise<CtlResult> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}
