/**
 * What a result is worth comparing against: the machine (cores, memory, kernel, load), the
 * versions of the moving parts, the git revision, and the API's resident memory.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from '../stack/paths.js';
import { runningPid } from '../stack/process-manager.js';

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .split('\n')[0]!
      .trim();
  } catch {
    return 'unknown';
  }
}

export function machine() {
  const cpu = cpus();
  return {
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    kernel: release(),
    loadavg1m: +loadavg()[0]!.toFixed(2),
  };
}

export function versions() {
  const pkg = (name: string): string => {
    try {
      const file = join(REPO_ROOT, 'node_modules', name, 'package.json');
      return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
    } catch {
      return 'unknown';
    }
  };
  return {
    node: process.version,
    mariadb: firstLine('mariadbd', ['--version']),
    haproxy: firstLine('haproxy', ['-v']),
    redis: firstLine('redis-server', ['--version']),
    etcd: firstLine('etcd', ['--version']),
    autocannon: pkg('autocannon'),
  };
}

export function git(): { sha: string; dirty: boolean } {
  const sha = firstLine('git', ['-C', REPO_ROOT, 'rev-parse', '--short', 'HEAD']);
  let dirty = false;
  try {
    dirty =
      execFileSync(
        'git',
        // result files are not code: a run right after one was added or removed is not "dirty"
        [
          '-C',
          REPO_ROOT,
          'status',
          '--porcelain',
          '--untracked-files=no',
          '--',
          '.',
          ':(exclude)bench/results',
        ],
        { encoding: 'utf8' },
      ).trim() !== '';
  } catch {
    /* not a git checkout: sha says "unknown" */
  }
  return { sha, dirty };
}

/** pid of a running stack process (`.stack/pids/<name>.pid`, checked by the stack's own rules) */
export function stackPid(name: string): number | undefined {
  return runningPid(name);
}

/** VmRSS of a process in MiB, undefined when it is not running */
export function rssMiB(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? +(Number(m[1]) / 1024).toFixed(1) : undefined;
  } catch {
    return undefined;
  }
}
