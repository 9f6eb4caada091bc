/**
 * Plain background processes, each with a pid file (`<pidDir>/<name>.pid`, the pid alone) and a
 * log file (`<logDir>/<name>.log`, stdout and stderr appended).
 *
 * Contracts:
 * - every process is spawned detached, in its own session and process group (pgid = pid), so it
 *   outlives the command that started it, and `stop` can signal the whole group (the process and
 *   any children it forked without leaving the group) and nothing else. Nothing is ever killed by name.
 * - a pid counts as ours only while it is alive AND is the process `start` spawned: beside the pid
 *   file, `<name>.start` keeps the kernel's start time of that process (clock ticks since boot,
 *   /proc/<pid>/stat field 22), and the live pid must have the same. A stale pid file whose pid
 *   has since been reused by an unrelated process is reported `dead` and that process is never
 *   signalled. (Pid files without a `.start` file, from before it, fall back to comparing the
 *   pid's start with the file's mtime. That comparison goes through the wall clock's idea of the
 *   boot time, which drifts on a virtual machine — seen here: 2.4 s in 13 minutes — and then
 *   called a stack of live processes dead.)
 * - `stop` SIGCONTs first (a SIGSTOPped process cannot act on SIGTERM), then SIGTERM, then SIGKILL
 *   after `graceMs`. Group members left behind by a leader that died on its own (e.g. children of
 *   a SIGKILLed shell) are stopped too.
 * - epmd, which an Erlang VM may spawn, daemonizes into its own session: it is not in the group
 *   and is deliberately left alone (it may serve the system RabbitMQ too).
 */
import { spawn } from 'node:child_process';
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { LOG_DIR, PID_DIR } from './paths.js';

export type ProcessState = 'running' | 'stopped' | 'dead' | 'not started';

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  /** merged over process.env; `undefined` removes a variable */
  env?: Record<string, string | undefined>;
  cwd?: string;
}

export interface StopOptions {
  graceMs?: number;
}

/** `/proc/<pid>/stat` fields after the command name: [state, ppid, pgrp, …, starttime at 19] */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

let bootTimeMs: number | undefined;
/** Wall-clock start of `pid` in ms (kernel clock ticks are 1/100 s on Linux), undefined if gone. */
function startedAtMs(pid: number): number | undefined {
  const ticks = Number(procStat(pid)?.[19]);
  if (!Number.isFinite(ticks)) return undefined;
  if (bootTimeMs === undefined) {
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    bootTimeMs = Number(btime?.[1] ?? 0) * 1000;
  }
  return bootTimeMs + ticks * 10;
}

/** True while `pid` exists and is not a zombie (exited, not yet reaped). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: exists but belongs to someone else — alive, and certainly not ours
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const state = procStat(pid)?.[0];
  return state !== 'Z' && state !== 'X';
}

/** SIGSTOPped (or stopped by a debugger). */
export function isStopped(pid: number): boolean {
  const state = procStat(pid)?.[0];
  return state === 'T' || state === 't';
}

/** Live members of process group `pgid` other than its leader. */
function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === pgid) continue;
    const stat = procStat(pid);
    if (stat && Number(stat[2]) === pgid && stat[0] !== 'Z') members.push(pid);
  }
  return members;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export function createProcessManager({ pidDir, logDir }: { pidDir: string; logDir: string }) {
  const pidFile = (name: string) => join(pidDir, `${name}.pid`);
  /** the kernel's start time (clock ticks since boot) of the process `start` spawned */
  const startFile = (name: string) => join(pidDir, `${name}.start`);
  const logFile = (name: string) => join(logDir, `${name}.log`);

  function readPid(name: string): number | undefined {
    const f = pidFile(name);
    if (!existsSync(f)) return undefined;
    const pid = Number(readFileSync(f, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  }

  /**
   * Is `pid` the process `start` spawned for `name`? Its start time in ticks since boot is the one
   * `start` recorded: a pid reused later started later. Without a record (a pid file from before
   * it): was `pid` started when the pid file was written? The file is written right after the
   * spawn; slack covers btime rounding and a busy event loop, not a drifted wall clock.
   */
  function isOurs(name: string, pid: number): boolean {
    const recorded = readStart(name);
    if (recorded !== undefined) return procStat(pid)?.[19] === recorded;
    const started = startedAtMs(pid);
    if (started === undefined) return false;
    let written: number;
    try {
      written = statSync(pidFile(name)).mtimeMs;
    } catch {
      return false;
    }
    return started <= written + 2_000 && started >= written - 60_000;
  }

  function readStart(name: string): string | undefined {
    try {
      const ticks = readFileSync(startFile(name), 'utf8').trim();
      return /^\d+$/.test(ticks) ? ticks : undefined;
    } catch {
      return undefined;
    }
  }

  function state(name: string): ProcessState {
    const pid = readPid(name);
    if (pid === undefined) return 'not started';
    if (!isAlive(pid) || !isOurs(name, pid)) return 'dead';
    return isStopped(pid) ? 'stopped' : 'running';
  }

  /** The pid of `name` while it is ours and alive (running or stopped). */
  function livePid(name: string): number | undefined {
    const s = state(name);
    return s === 'running' || s === 'stopped' ? readPid(name) : undefined;
  }

  function start({ name, command, args, env = {}, cwd }: StartOptions): number {
    mkdirSync(pidDir, { recursive: true });
    mkdirSync(logDir, { recursive: true });
    const fd = openSync(logFile(name), 'a');
    try {
      const child = spawn(command, args, {
        cwd,
        env: { ...process.env, ...env },
        detached: true,
        stdio: ['ignore', fd, fd],
      });
      // a missing command surfaces as an async 'error' event; the pid is then undefined
      child.on('error', () => {});
      if (!child.pid) throw new Error(`could not start ${name}: ${command} not found or not executable`);
      child.unref();
      // the start time first: a reader that sees the new pid also sees its start time (a child
      // gone already has none, and its pid file then falls back to the mtime check)
      const ticks = procStat(child.pid)?.[19];
      if (ticks) writeFileSync(startFile(name), `${ticks}\n`);
      else rmSync(startFile(name), { force: true });
      writeFileSync(pidFile(name), `${child.pid}\n`);
      return child.pid;
    } finally {
      closeSync(fd);
    }
  }

  function signalGroup(pid: number, signal: NodeJS.Signals, { leader }: { leader: boolean }): void {
    const targets = leader ? [-pid, pid] : [-pid];
    for (const target of targets) {
      try {
        process.kill(target, signal);
      } catch {
        /* gone, or the group is empty */
      }
    }
  }

  /** SIGCONT `name`'s group if it is stopped; true when it was. */
  function resume(name: string): boolean {
    const pid = livePid(name);
    if (pid === undefined || !isStopped(pid)) return false;
    signalGroup(pid, 'SIGCONT', { leader: true });
    return true;
  }

  /**
   * Stop `name` and its process group; removes the pid and start files. Resolves true when something of
   * ours was alive. A pid file whose pid now belongs to another process only loses the file.
   */
  async function stop(name: string, { graceMs = 10_000 }: StopOptions = {}): Promise<boolean> {
    const pid = readPid(name);
    if (pid === undefined) return false;
    // (a zombie leader still has its /proc entry, so its start time still identifies it)
    const ours = isOurs(name, pid);
    const leaderOurs = ours && isAlive(pid);
    // a group whose leader pid was reused by someone else is not ours to touch; a group whose
    // leader is gone (no /proc entry) can only hold our leftovers: pgids are not reused while
    // the group has members
    const groupIsOurs = ours || procStat(pid) === undefined;
    const alive = () => (leaderOurs && isAlive(pid)) || (groupIsOurs && groupMembers(pid).length > 0);
    const wasAlive = alive();
    if (wasAlive) {
      signalGroup(pid, 'SIGCONT', { leader: leaderOurs });
      signalGroup(pid, 'SIGTERM', { leader: leaderOurs });
      const deadline = Date.now() + graceMs;
      while (alive() && Date.now() < deadline) await sleep(100);
      if (alive()) signalGroup(pid, 'SIGKILL', { leader: leaderOurs });
      const killDeadline = Date.now() + 5_000;
      while (alive() && Date.now() < killDeadline) await sleep(50);
    }
    rmSync(pidFile(name), { force: true });
    rmSync(startFile(name), { force: true });
    return wasAlive;
  }

  return { pidFile, startFile, logFile, readPid, isOurs, state, livePid, start, resume, stop };
}

/** The process manager of the local stack (`.stack/pids`, `.stack/logs`). */
export const processes = createProcessManager({ pidDir: PID_DIR, logDir: LOG_DIR });

export const { pidFile, logFile, readPid } = processes;

/** pid of `name` while it is alive and ours (running or SIGSTOPped), else undefined */
export function runningPid(name: string): number | undefined {
  return processes.livePid(name);
}

export const startProcess = processes.start;
export const stopProcess = processes.stop;

/** Poll `check` until true; fails early when the process `logName` has exited. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  logName?: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    if (logName && processes.state(logName) === 'dead') {
      throw new Error(`${logName} exited while waiting for ${what}; see ${logFile(logName)}`);
    }
    await sleep(100);
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${logName ? `; see ${logFile(logName)}` : ''}`,
  );
}
