/**
 * One extra API instance beside the local stack, for the diagnostics (bench/profile.ts,
 * bench/gc-trace.ts): the stack's environment, a free port, not behind HAProxy, so the stack's own
 * instances are left alone. `start` resolves once /health/ready answers 200 (or throws after
 * ~10 s or when the process exits); `stop` sends SIGTERM and SIGKILLs after 15 s.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { API_ENTRY } from '../stack/build.js';
import { httpStatus } from '../stack/probes.js';
import { sleep } from '../stack/process-manager.js';
import { stackEnv } from '../stack/stack.js';
import { topology } from '../stack/topology.js';
import { freePort } from './ceiling.js';

export interface ExtraInstance {
  child: ChildProcess;
  base: string;
}

export async function startExtraInstance({
  id,
  nodeArgs,
  stdout = 'ignore',
  entry = API_ENTRY,
  env = {},
}: {
  /** SHARDGATE_INSTANCE_ID */
  id: string;
  /** Node/V8 flags before the entry script */
  nodeArgs: readonly string[];
  /** 'pipe' to read what the process prints (e.g. `--trace-gc`) from `child.stdout` */
  stdout?: 'ignore' | 'pipe';
  /** the API entry to run (default: the stack's `dist/`; bench/ab.ts runs builds of other revisions) */
  entry?: string;
  /** more environment variables, over the defaults below */
  env?: Record<string, string>;
}): Promise<ExtraInstance> {
  const port = await freePort(topology.host);
  const child = spawn(process.execPath, [...nodeArgs, entry], {
    env: {
      ...process.env,
      ...stackEnv(),
      PORT: String(port),
      SHARDGATE_INSTANCE_ID: id,
      SHARDGATE_DRAIN_MS: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', stdout, 'inherit'],
  });
  const base = `http://${topology.host}:${port}`;
  for (let i = 0; (await httpStatus(`${base}/health/ready`)) !== 200; i++) {
    if (i > 100 || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the extra API instance ${id} did not become ready`);
    }
    await sleep(100);
  }
  return { child, base };
}

export async function stopExtraInstance(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  await Promise.race([exited, sleep(15_000).then(() => child.kill('SIGKILL'))]);
  await exited;
}
