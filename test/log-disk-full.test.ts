/**
 * A log destination that refuses every write (an outside check: a full disk under the log). An
 * API instance and an email worker from source beside the stack, their stdout and stderr on
 * `/dev/full` (every write fails with ENOSPC), LOG_LEVEL `info` so that they log. Before, pino's
 * asynchronous sonic-boom emitted the first refused write as an unhandled 'error', and its exit
 * hook (`flushSync`) then retried the write forever: the instance never answered, never
 * registered, and ignored SIGTERM; the worker likewise. Now a refused line is dropped and counted
 * (`shardgate_log_lines_dropped_total{reason="ENOSPC"}`, observability/log-destination.ts): the
 * instance becomes ready, answers reads and writes, shows the count, and stops on SIGTERM; the
 * worker answers on its metrics port with the count, and stops on SIGTERM.
 * Every wait is bounded, so the old code fails here rather than hanging.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { metricValue } from '../stack/metric-samples.js';
import { REPO_ROOT } from '../stack/paths.js';
import { stackEnv } from '../stack/stack-env.js';
import { api } from './helpers/api.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const SHARD = 'shard-1';
const DROPPED = 'shardgate_log_lines_dropped_total';
const tenant = uniqueTenantId('logfull');
const children: ChildProcess[] = [];
let full: number | undefined;

/** `entry` from source with stdout and stderr on /dev/full; `env` over the stack's */
function startOnFullDisk(entry: string, env: Record<string, string>): ChildProcess {
  full ??= openSync('/dev/full', 'w');
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: REPO_ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      ...stackEnv(),
      SHARDGATE_LISTEN_HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', full, full],
  });
  children.push(child);
  return child;
}

/** the exit code (or signal) within `timeoutMs`, else undefined */
function exitWithin(child: ChildProcess, timeoutMs: number): Promise<number | string | null | undefined> {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve(code ?? signal);
    });
  });
}

/** a GET that fails after 5 s instead of waiting for a hung process */
const get = (url: string) => fetch(url, { signal: AbortSignal.timeout(5000) });

/** the lines `base` counts as dropped because their writes failed with ENOSPC (0 before any) */
async function droppedLines(base: string): Promise<number> {
  return metricValue(await (await get(`${base}/metrics`)).text(), DROPPED, { reason: 'ENOSPC' }) ?? 0;
}

beforeAll(() => createTenant(tenant, SHARD));
afterAll(async () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  if (full !== undefined) closeSync(full);
  removeTenant(tenant);
  for (const table of ['members', 'outbox', 'idempotency_keys'])
    await rootQuery(node(SHARD, 'master').port, `DELETE FROM ${table} WHERE tenant_id = ?`, [tenant]);
});

describe('a log destination that refuses every write (ENOSPC)', () => {
  it('an API instance serves, counts the dropped lines, and stops on SIGTERM', async () => {
    const port = await freePort('127.0.0.1');
    const child = startOnFullDisk('src/entry/node.ts', {
      SHARDGATE_INSTANCE_ID: `logfull-${port}`,
      PORT: String(port),
      SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
      SHARDGATE_DRAIN_MS: '0',
    });
    const base = `http://127.0.0.1:${port}`;
    await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
        return (await get(`${base}/health/ready`).catch(() => undefined))?.status === 200;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the instance on /dev/full ready' },
    );
    expect((await get(`${base}/health`)).status).toBe(200);

    // a write, through the shard's master and the outbox
    await waitFor(async () => (await api('GET', '/v1/books', { tenant, base })).status === 200, {
      timeoutMs: 5000,
      what: 'the tenant known to the instance',
    });
    const registered = await api('POST', '/v1/members', {
      tenant,
      base,
      body: { email: `lib-${tenant}@example.com`, name: 'Lib', password: 'correct horse battery' },
    });
    expect(registered.status).toBe(201);

    // its startup lines (`listening`, …) were refused and counted
    expect(await droppedLines(base)).toBeGreaterThan(0);

    child.kill('SIGTERM');
    expect(await exitWithin(child, 10_000)).toBe(0);
  });

  it('an email worker answers on its metrics port, counts the dropped lines, and stops on SIGTERM', async () => {
    const port = await freePort('127.0.0.1');
    const child = startOnFullDisk('src/entry/email-worker.ts', {
      SHARDGATE_INSTANCE_ID: `logfull-${port}`,
      SHARDGATE_WORKER_METRICS_PORT: String(port),
    });
    const base = `http://127.0.0.1:${port}`;
    // `email worker started` is logged once it has read the config: lines were refused by then
    const dropped = await waitFor(
      async () => {
        if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}`);
        return droppedLines(base);
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'dropped lines counted on the worker on /dev/full' },
    );
    expect(dropped).toBeGreaterThan(0);

    child.kill('SIGTERM');
    expect(await exitWithin(child, 10_000)).toBe(0);
  });
});
