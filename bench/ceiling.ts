/**
 * Starts the ceiling of the benchmark and stops exactly what it started: the bare `node:http`
 * server of ceiling-server.ts, and a second HAProxy in front of it rendered by the stack's own
 * renderer (stack/haproxy-config.ts: same global, defaults and backend options as the stack's
 * HAProxy on :8080, one server) on free ports, so the stack's HAProxy and its config are never
 * touched. Its config and runtime socket live in a temporary directory removed on stop.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { renderHaproxyConfig } from '../stack/haproxy-config.js';
import { httpStatus } from '../stack/probes.js';
import { sleep } from '../stack/process-manager.js';

export interface Ceiling {
  /** the bare server */
  direct: string;
  /** the same behind the second HAProxy */
  haproxy: string;
  pids: { server: number; haproxy: number };
  stop: () => Promise<void>;
}

const SERVER = fileURLToPath(new URL('./ceiling-server.ts', import.meta.url));

/** `preferred` when it is free, else any free port the kernel hands out */
export function freePort(host: string, preferred = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      if (preferred !== 0 && error.code === 'EADDRINUSE') resolve(freePort(host, 0));
      else reject(error);
    });
    probe.listen(preferred, host, () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function serverPort(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('ceiling server did not start within 10 s')), 10_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) {
        clearTimeout(timer);
        resolve((JSON.parse(line) as { port: number }).port);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ceiling server exited with ${code}`));
    });
  });
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(3000).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}

export async function startCeiling({
  host,
  preferredLbPort = 8090,
}: {
  host: string;
  preferredLbPort?: number;
}): Promise<Ceiling> {
  const children: ChildProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'shardgate-bench-'));
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
  };
  // if the bench dies without reaching its `finally`, still take these two down with it
  const onExit = () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.once('exit', onExit);
  try {
    // same Node and loader flags as this process (tsx), so the .ts server runs as is
    const server = spawn(process.execPath, [...process.execArgv, SERVER, '0', host], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.push(server);
    const port = await serverPort(server);
    const lbPort = await freePort(host, preferredLbPort);
    const statsPort = await freePort(host);
    const agentPort = await freePort(host); // nothing listens: HAProxy ignores an unreachable agent
    const cfg = join(dir, 'haproxy.cfg');
    writeFileSync(
      cfg,
      renderHaproxyConfig({
        bindHost: host,
        servers: [{ name: 'ceiling', host, port, agentPort, weight: 1 }],
        socketPath: join(dir, 'haproxy.sock'),
        port: lbPort,
        statsPort,
      }),
    );
    const lb = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
    children.push(lb);
    const haproxy = `http://${host}:${lbPort}`;
    for (let i = 0; (await httpStatus(`${haproxy}/`)) !== 200; i++) {
      if (i > 50 || lb.exitCode !== null) throw new Error(`ceiling HAProxy on :${lbPort} did not answer 200`);
      await sleep(100);
    }
    return {
      direct: `http://${host}:${port}`,
      haproxy,
      pids: { server: server.pid ?? 0, haproxy: lb.pid ?? 0 },
      stop: async () => {
        await stop();
        process.off('exit', onExit);
      },
    };
  } catch (error) {
    await stop();
    process.off('exit', onExit);
    throw error;
  }
}
