/**
 * How `lb sync --watch` stops (commands/lb-sync.ts):
 * - a SIGTERM while a tick waits on HAProxy lets that tick finish before the daemon exits 0 (the
 *   stop waits for SerialRuns.close()). Otherwise an operator's SIGTERM, or a rolling restart of
 *   the daemon, would cut a tick's `set server` commands off and leave a weight from etcd
 *   unapplied until the next daemon runs;
 * - a SIGTERM before etcd first answered ends the daemon with exit 0, not by the signal's default
 *   action (its handlers were once set only after etcd's first answer).
 *
 * A private HAProxy process (its own runtime socket, one backend, no checks) stands in for the
 * stack's, so neither the stack's own lb-sync nor an instance's agent-check can apply the weight
 * for it: the weight in it can only come from the daemon under test. It is SIGSTOPped before the
 * daemon starts, so the daemon's first tick waits on its socket (seen in the listener's backlog,
 * for under the runtime API's 2 s answer timeout); the daemon gets SIGTERM meanwhile, and the
 * HAProxy is resumed.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
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

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startChild(command: string, args: string[], env: NodeJS.ProcessEnv = process.env): Started {
  let output = '';
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  child.stdout!.on('data', (d) => (output += String(d)));
  child.stderr!.on('data', (d) => (output += String(d)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  children.push(child);
  return { child, output: () => output, exited };
}

function startDaemon(env?: NodeJS.ProcessEnv): Started {
  // no poll during the test: only the start runs a tick
  const args = [
    'lb',
    'sync',
    '--watch',
    '--interval-ms',
    '3600000',
    '--socket',
    socket,
    '--backend',
    BACKEND,
  ];
  return startChild(process.execPath, [BIN, ...args], env);
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

describe('lb sync --watch stopped', () => {
  it('during a tick waiting on HAProxy: applies the weight that tick was sending, then exits 0', async () => {
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
    expect(waitingOnSocket()).toBe(0);

    etcdPut(KEY, '7');
    process.kill(haproxy.child.pid!, 'SIGSTOP');
    let resumed = false;
    let daemon: Started | undefined;
    try {
      daemon = startDaemon();
      // the daemon reads etcd, then its first tick waits on the socket (under the runtime API's
      // 2 s answer timeout from here on)
      await waitFor(() => waitingOnSocket() > 0, {
        timeoutMs: 15_000,
        intervalMs: 20,
        what: `the daemon's first tick waiting on the stopped HAProxy: ${daemon.output()}`,
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
    expect(await daemon.exited, daemon.output()).toEqual({ code: 0, signal: null });
    // the weight the tick was sending when the stop came, applied by that tick
    expect(await weight(), daemon.output()).toBe(7);
    expect(daemon.output()).not.toContain('not reachable');
  }, 30_000);

  it('before etcd first answered: exits 0 at once', async () => {
    // a port nothing listens on: the daemon's etcd reads are refused and retried, so its start
    // never ends
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const { port } = closed.address() as { port: number };
    await new Promise((r) => closed.close(r));
    const daemon = startDaemon({ ...process.env, SHARDGATE_ETCD_ENDPOINTS: `http://127.0.0.1:${port}` });
    await waitFor(() => daemon.output().includes('lb sync watching'), {
      timeoutMs: 15_000,
      what: `the daemon started: ${daemon.output()}`,
    });
    // the start waits on etcd meanwhile
    await sleep(500);
    expect(daemon.child.exitCode, daemon.output()).toBeNull();
    daemon.child.kill('SIGTERM');
    const ended = await Promise.race([daemon.exited, sleep(5000).then(() => 'still running' as const)]);
    expect(ended, daemon.output()).toEqual({ code: 0, signal: null });
  }, 30_000);
});
