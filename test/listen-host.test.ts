/**
 * SHARDGATE_LISTEN_HOST: every listener of an API instance (HTTP port, HAProxy agent-check port)
 * and of the email worker (metrics port) binds that address and no other (before: the API and
 * its agent port bound 0.0.0.0, the worker's metrics every interface).
 *
 * The entries run from source with their dependencies at a closed port (helpers/start-entry.ts):
 * a listener comes up before etcd, Redis or RabbitMQ answer, so the test needs nothing of the
 * local stack and leaves it alone (an instance registered in its etcd would show in
 * `shardgate-ctl status`).
 *
 * "Listens only there" is checked from outside the process: 127.0.0.2 (loopback too, but a
 * socket bound to 127.0.0.1 does not answer it) and every non-loopback IPv4 address of this
 * host refuse the connection, and `ss` lists the one socket on the given address. The same
 * probes run against a process told `0.0.0.0`, and must then succeed: they can tell the two
 * apart.
 */
import { type ChildProcess, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';

/** addresses of this host other than 127.0.0.1: a process bound to 127.0.0.1 must refuse each */
const OTHER_ADDRESSES = [
  '127.0.0.2',
  ...Object.values(networkInterfaces())
    .flat()
    .filter((a) => a && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address),
];

afterEach(stopStartedEntries);

/** whether a TCP connection to host:port is accepted (false when refused or after 2 s) */
function accepts(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: 2000 });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
    sock.once('timeout', () => done(false));
  });
}

/** waits until 127.0.0.1:port accepts (the process under test got that far) */
async function waitListening(port: number, proc: { child: ChildProcess; stderr: () => string }) {
  const deadline = Date.now() + 30_000;
  while (!(await accepts('127.0.0.1', port))) {
    if (proc.child.exitCode !== null) throw new Error(`exited ${proc.child.exitCode}: ${proc.stderr()}`);
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** local addresses of the TCP sockets listening on `port` (`ss`), undefined where there is no ss */
function listeners(port: number): string[] | undefined {
  const r = spawnSync('ss', ['-Hltn', `sport = :${port}`], { encoding: 'utf8' });
  if (r.error || r.status !== 0) return undefined;
  return r.stdout
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => line.trim().split(/\s+/)[3]!);
}

async function expectOnlyLoopback(port: number): Promise<void> {
  for (const other of OTHER_ADDRESSES) expect(await accepts(other, port), `${other}:${port}`).toBe(false);
  const bound = listeners(port);
  // half of the "listens only there" check: a missing `ss` (iproute2) fails it, not skips it
  expect(bound, 'ss (Debian package iproute2) could not be run').toBeDefined();
  expect(bound, `ss -ltn sport = :${port}`).toEqual([`127.0.0.1:${port}`]);
}

describe('SHARDGATE_LISTEN_HOST', () => {
  it('an API instance serves HTTP and agent-check on 127.0.0.1 only', async () => {
    const [port, agentPort] = [await freePort('0.0.0.0'), await freePort('0.0.0.0')];
    const api = startEntry('src/entry/node.ts', {
      SHARDGATE_LISTEN_HOST: '127.0.0.1',
      PORT: String(port),
      SHARDGATE_AGENT_PORT: String(agentPort),
    });
    await waitListening(port, api);
    await waitListening(agentPort, api);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    await expectOnlyLoopback(port);
    await expectOnlyLoopback(agentPort);
  });

  it('the email worker serves its metrics on 127.0.0.1 only', async () => {
    const port = await freePort('0.0.0.0');
    const worker = startEntry('src/entry/email-worker.ts', {
      SHARDGATE_LISTEN_HOST: '127.0.0.1',
      SHARDGATE_WORKER_METRICS_PORT: String(port),
    });
    await waitListening(port, worker);
    expect((await fetch(`http://127.0.0.1:${port}/metrics`)).status).toBe(200);
    await expectOnlyLoopback(port);
  });

  it('0.0.0.0 listens on every address: the probes above see the difference', async () => {
    const [port, agentPort] = [await freePort('0.0.0.0'), await freePort('0.0.0.0')];
    const api = startEntry('src/entry/node.ts', {
      SHARDGATE_LISTEN_HOST: '0.0.0.0',
      PORT: String(port),
      SHARDGATE_AGENT_PORT: String(agentPort),
    });
    await waitListening(port, api);
    await waitListening(agentPort, api);
    for (const p of [port, agentPort]) {
      for (const other of OTHER_ADDRESSES) expect(await accepts(other, p), `${other}:${p}`).toBe(true);
      const bound = listeners(p);
      expect(bound, 'ss (Debian package iproute2) could not be run').toBeDefined();
      expect(bound, `ss -ltn sport = :${p}`).toEqual([`0.0.0.0:${p}`]);
    }
  });

  it('a malformed value stops the API at start with one line naming the variable', async () => {
    const api = startEntry('src/entry/node.ts', { SHARDGATE_LISTEN_HOST: '300.1.1.1', PORT: '1' });
    expect(await api.exited()).toBe(1);
    expect(api.stderr()).toMatch(
      /^shardgate: invalid environment variable SHARDGATE_LISTEN_HOST: must be an IP address or a hostname[^\n]*\n$/,
    );
  });
});
