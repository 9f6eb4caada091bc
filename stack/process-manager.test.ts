import { spawn } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createProcessManager, isAlive, sleep } from './process-manager.js';

const dir = mkdtempSync(join(tmpdir(), 'shardgate-pm-'));
const pm = createProcessManager({ pidDir: join(dir, 'pids'), logDir: join(dir, 'logs') });
const strangers: number[] = [];

afterEach(async () => {
  for (const name of ['sleeper', 'wrapper', 'stale']) await pm.stop(name, { graceMs: 1000 });
});
afterAll(() => {
  for (const pid of strangers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

/** pgid of a live pid, from /proc */
function pgid(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]);
}

function liveGroupMembers(group: number): number[] {
  return readdirSync('/proc')
    .map(Number)
    .filter((pid) => Number.isInteger(pid) && pid > 0)
    .filter((pid) => {
      try {
        const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
        return Number(fields[2]) === group && fields[0] !== 'Z';
      } catch {
        return false;
      }
    });
}

describe('process manager', () => {
  it('starts a detached process in its own group with a pid file and a log', async () => {
    const pid = pm.start({ name: 'sleeper', command: 'sh', args: ['-c', 'echo hello; exec sleep 30'] });
    expect(Number(readFileSync(pm.pidFile('sleeper'), 'utf8'))).toBe(pid);
    expect(pgid(pid)).toBe(pid);
    expect(pm.state('sleeper')).toBe('running');
    await sleep(200);
    expect(readFileSync(pm.logFile('sleeper'), 'utf8')).toContain('hello');
  });

  it('reports a SIGSTOPped process as stopped, resumes it, and stops one that is stopped', async () => {
    // a shell that says so when SIGTERM reaches it: a SIGKILL after the grace would not let it
    const pid = pm.start({
      name: 'sleeper',
      command: 'sh',
      args: ['-c', 'trap "echo got SIGTERM; exit 0" TERM; sleep 30 & wait'],
    });
    process.kill(pid, 'SIGSTOP');
    await sleep(100);
    expect(pm.state('sleeper')).toBe('stopped');
    expect(pm.resume('sleeper')).toBe(true);
    await sleep(100);
    expect(pm.state('sleeper')).toBe('running');
    process.kill(pid, 'SIGSTOP');
    await sleep(100);
    // SIGTERM alone would stay pending on a stopped process; stop() continues it first
    expect(await pm.stop('sleeper', { graceMs: 5000 })).toBe(true);
    // ended by the SIGTERM (continued first), not by the SIGKILL after the grace
    expect(readFileSync(pm.logFile('sleeper'), 'utf8')).toContain('got SIGTERM');
    expect(isAlive(pid)).toBe(false);
    expect(pm.state('sleeper')).toBe('not started');
  });

  it('stops the members a dead leader left behind in its group', async () => {
    const leader = pm.start({ name: 'wrapper', command: 'sh', args: ['-c', 'sleep 30 & wait'] });
    await sleep(200);
    process.kill(leader, 'SIGKILL');
    await sleep(200);
    expect(pm.state('wrapper')).toBe('dead');
    expect(await pm.stop('wrapper', { graceMs: 2000 })).toBe(true);
    // the orphaned `sleep` was in the group: nothing of the group is left alive (a zombie may
    // linger when PID 1 of a container does not reap orphans)
    expect(liveGroupMembers(leader)).toEqual([]);
  });

  it('never signals a process that merely reuses a stale pid', async () => {
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    strangers.push(stranger.pid!);
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(pm.pidFile('stale'), `${stranger.pid}\n`);
    // the pid file predates the process: the pid was "reused"
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(pm.pidFile('stale'), old, old);
    expect(pm.state('stale')).toBe('dead');
    expect(pm.resume('stale')).toBe(false);
    expect(await pm.stop('stale', { graceMs: 500 })).toBe(false);
    expect(isAlive(stranger.pid!)).toBe(true);
  });

  it('knows its process by the start time it recorded, however far the wall clock drifts', async () => {
    const pid = pm.start({ name: 'sleeper', command: 'sleep', args: ['30'] });
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    expect(readFileSync(pm.startFile('sleeper'), 'utf8').trim()).toBe(
      stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19],
    );
    // the pid file's mtime an hour off the process's start, as a boot time read through a
    // drifted wall clock would make it: still ours, and stop() stops it
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(pm.pidFile('sleeper'), old, old);
    expect(pm.state('sleeper')).toBe('running');
    expect(await pm.stop('sleeper', { graceMs: 1000 })).toBe(true);
    expect(isAlive(pid)).toBe(false);
  });

  it('never signals a process that reuses a pid whose recorded start time is not its own', async () => {
    const stranger = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    strangers.push(stranger.pid!);
    mkdirSync(join(dir, 'pids'), { recursive: true });
    writeFileSync(pm.startFile('stale'), '12345\n');
    // written now, so the mtime check alone would call it ours
    writeFileSync(pm.pidFile('stale'), `${stranger.pid}\n`);
    expect(pm.state('stale')).toBe('dead');
    expect(await pm.stop('stale', { graceMs: 500 })).toBe(false);
    expect(isAlive(stranger.pid!)).toBe(true);
  });

  it('fails with the command name when the binary does not exist', () => {
    expect(() => pm.start({ name: 'sleeper', command: '/nonexistent/binary', args: [] })).toThrow(
      /\/nonexistent\/binary/,
    );
  });
});
