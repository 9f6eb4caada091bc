/** Run `shardgate-ctl` as an operator would (the package bin), capturing exit code and output. */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
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

export interface TimedCtlResult extends CtlResult {
  /** ms from spawn to exit */
  elapsedMs: number;
  /** ms from the first byte on stderr to exit: how long the process lingered after its line */
  lingerMs: number;
}

/** `ctl` without blocking the event loop (requests can run while the command does), timed. */
export function ctlAsync(args: string[], env: Record<string, string> = {}): Promise<TimedCtlResult> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    let lineAt: number | undefined;
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on('data', (d: Buffer) => {
      lineAt ??= Date.now();
      stderr += d.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      const end = Date.now();
      resolve({ code: code ?? -1, stdout, stderr, elapsedMs: end - t0, lingerMs: end - (lineAt ?? end) });
    });
  });
}

export interface RunningCtl {
  child: ChildProcess;
  /** what it wrote to stdout so far */
  stdout(): string;
  /** resolves when it has exited (killed or not) */
  exited: Promise<void>;
}

/** `shardgate-ctl` started in the background, for a test that stops or kills it mid-command. */
export function ctlStart(args: string[], env: Record<string, string> = {}): RunningCtl {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env } });
  let stdout = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.resume();
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  return { child, stdout: () => stdout, exited };
}
