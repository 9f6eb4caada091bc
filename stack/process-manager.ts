/**
 * Plain background processes with a pid file and a log file each. Every process is spawned
 * detached in its own process group, so `stop` can signal the whole group (e.g. RabbitMQ's beam
 * and its helpers) and nothing else: the stack never kills by name.
 * Failure modes: a stale pid file (process gone) counts as not running; a SIGSTOPped process
 * is SIGCONTed before SIGTERM so it can exit; SIGKILL after `graceMs`.
 */
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { LOG_DIR, PID_DIR } from './paths.js';

export function pidFile(name: string): string {
  return join(PID_DIR, `${name}.pid`);
}

export function logFile(name: string): string {
  return join(LOG_DIR, `${name}.log`);
}

export function readPid(name: string): number | undefined {
  const f = pidFile(name);
  if (!existsSync(f)) return undefined;
  const pid = Number(readFileSync(f, 'utf8').trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // a zombie (exited, not yet reaped) is not alive
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.split(') ')[1]?.[0] !== 'Z';
  } catch {
    return true;
  }
}

export function runningPid(name: string): number | undefined {
  const pid = readPid(name);
  return pid && isAlive(pid) ? pid : undefined;
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export function startProcess({ name, command, args, env = {}, cwd }: StartOptions): number {
  mkdirSync(PID_DIR, { recursive: true });
  mkdirSync(LOG_DIR, { recursive: true });
  const fd = openSync(logFile(name), 'a');
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  if (!child.pid) throw new Error(`could not start ${name} (${command})`);
  child.unref();
  writeFileSync(pidFile(name), `${child.pid}\n`);
  return child.pid;
}

/** Stop the process group of `name` (SIGCONT, SIGTERM, then SIGKILL after graceMs). */
export async function stopProcess(name: string, { graceMs = 10_000 } = {}): Promise<boolean> {
  const pid = readPid(name);
  if (!pid) return false;
  const signal = (sig: NodeJS.Signals) => {
    for (const target of [-pid, pid]) {
      try {
        process.kill(target, sig);
      } catch {
        /* gone or not a group leader */
      }
    }
  };
  const wasAlive = isAlive(pid);
  if (wasAlive) {
    signal('SIGCONT');
    signal('SIGTERM');
    const deadline = Date.now() + graceMs;
    while (isAlive(pid) && Date.now() < deadline) await sleep(100);
    if (isAlive(pid)) signal('SIGKILL');
    // the group's other members (children) get the same fate
    signal('SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
  rmSync(pidFile(name), { force: true });
  return wasAlive;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logName?: string,
) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (logName) {
      const pid = readPid(logName);
      if (pid && !isAlive(pid))
        throw new Error(`${logName} exited while waiting for ${what}; see ${logFile(logName)}`);
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${logName ? `; see ${logFile(logName)}` : ''}`,
  );
}

export async function httpStatus(url: string, timeoutMs = 1000): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return undefined;
  }
}
