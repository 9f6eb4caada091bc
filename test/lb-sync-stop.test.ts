/**
 * `lb sync --watch` asked to stop while a tick waits on HAProxy finishes that tick first
 * (commands/lb-sync.ts: the stop waits for SerialRuns.close() before the CLI exits). Otherwise an
 * operator's SIGTERM (or a rolling restart of the daemon) would cut a tick's `set server` commands
 * off and leave a weight from etcd unapplied until the next daemon runs.
 *
 * A private HAProxy process (its own runtime socket, one backend, no checks) stands in for the
 * stack's, so neither the stack's own lb-sync nor an instance's agent-check can apply the weight
 * for it: the weight in it can only come from the daemon under test. The HAProxy is SIGSTOPped so
 * the daemon's tick, started by an etcd change, waits on its socket (seen in the listener's
 * backlog; for under the runtime API's 2 s answer timeout); the daemon gets SIGTERM meanwhile,
 * and the HAProxy is resumed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { showServers } from '../control-plane/lb/haproxy-runtime.js';
import { binary } from '../stack/preflight.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const BIN = fileURLToPath(new URL('../control-plane/bin/shardgate-ctl.js', import.meta.url));
const BACKEND = 'stoptest';
// an id no instance has: the stack's own lb-sync only warns that its HAProxy has no such server
const SERVER = 'lbstop-1';
const KEY = `lb/weights/${SERVER}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const dir = mkdtempSync(join(tmpdir(), 'shardgate-lbstop-'));
const socket = join(dir, 'haproxy.sock');
const children: ChildProcess[] = [];

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    try {
      process.kill(child.pid!, 'SIGCONT');
    } catch {
      // gone already
    }
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }
  if (etcdGet(KEY) !== undefined) etcdDel(KEY);
  rmSync(dir, { recursive: true, force: true });
});

function startChild(command: string, args: string[]): { child: ChildProcess; output: () => string } {
  let output = '';
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (d) => (output += String(d)));
  child.stderr!.on('data', (d) => (output += String(d)));
  children.push(child);
  return { child, output: () => output };
}

/**
 * Connections waiting in the private HAProxy's runtime socket for it to accept them (the
 * listener's Recv-Q in `ss`): with HAProxy stopped, the daemon's tick is one of them once it has
 * sent its command. HAProxy binds the socket under a temporary name and renames it, so `ss`
 * lists it as `<socket>.<pid>.tmp`.
 */
function waitingOnSocket(): number {
  const lines = execFileSync(binary('ss'), ['-xlnH'], { encoding: 'utf8' }).split('\n');
  const line = lines.find((l) => l.includes(`${socket}.`) || l.includes(`${socket} `));
  return Number(line?.trim().split(/\s+/)[2] ?? 0);
}

async function weight(): Promise<number | undefined> {
  return (await showServers(socket, BACKEND)).find((s) => s.name === SERVER)?.weight;
}

describe('lb sync --watch stopped during a tick', () => {
  it('applies the weight the tick was sending before it exits', async () => {
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      [
        'global',
        `  stats socket ${socket} mode 600 level admin`,
        'defaults',
        '  mode http',
        '  timeout connect 1s',
        '  timeout client 5s',
        '  timeout server 5s',
        `backend ${BACKEND}`,
        `  server ${SERVER} 127.0.0.1:9 weight 1`,
        '',
      ].join('\n'),
    );
    const haproxy = startChild(binary('haproxy'), ['-db', '-f', cfg]);
    await waitFor(async () => (await weight()) === 1, {
      timeoutMs: 5000,
      what: `private haproxy up: ${haproxy.output()}`,
    });

    etcdPut(KEY, '3');
    const daemon = startChild(process.execPath, [
      BIN,
      'lb',
      'sync',
      '--watch',
      // no poll during the test: the etcd change alone starts the tick
      '--interval-ms',
      '3600000',
      '--socket',
      socket,
      '--backend',
      BACKEND,
    ]);
    await waitFor(async () => (await weight()) === 3, {
      timeoutMs: 10_000,
      what: `the daemon's first tick applies weight 3: ${daemon.output()}`,
    });

    const exited = new Promise<number | null>((r) => daemon.child.once('exit', (code) => r(code)));
    process.kill(haproxy.child.pid!, 'SIGSTOP');
    let resumed = false;
    try {
      etcdPut(KEY, '7');
      // the change reaches the daemon; its tick then waits on the socket (under the runtime
      // API's 2 s answer timeout from here on)
      await waitFor(() => waitingOnSocket() > 0, {
        timeoutMs: 1500,
        intervalMs: 20,
        what: `the daemon's tick waiting on the stopped HAProxy: ${daemon.output()}`,
      });
      daemon.child.kill('SIGTERM');
      await sleep(300);
      // still there: it waits for the tick, which waits for HAProxy
      expect(daemon.child.exitCode, daemon.output()).toBeNull();
      expect(daemon.child.signalCode, daemon.output()).toBeNull();
      process.kill(haproxy.child.pid!, 'SIGCONT');
      resumed = true;
    } finally {
      if (!resumed) process.kill(haproxy.child.pid!, 'SIGCONT');
    }
    expect(await exited, daemon.output()).toBe(0);
    // the weight the tick was sending when the stop came, applied by that tick
    expect(await weight(), daemon.output()).toBe(7);
    expect(daemon.output()).not.toContain('not reachable');
  });
});
