/**
 * `lb sync --watch` re-applies etcd weights after HAProxy restarts (issue "control plane" item 2):
 * a fresh HAProxy starts from its config file's weights; within a few seconds the daemon has
 * pushed the etcd weight again through the runtime API.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { showServers } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET, STATE_DIR } from '../stack/paths.js';
import { isAlive } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { etcdOverride } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const api1 = topology.apis[0]!.id;
const restores: (() => void)[] = [];
afterAll(() => {
  for (const r of restores.reverse()) r();
});

async function weightOf(name: string): Promise<number | undefined> {
  try {
    return (await showServers(HAPROXY_SOCKET, topology.haproxy.backend)).find((s) => s.name === name)?.weight;
  } catch {
    return undefined;
  }
}

describe('lb sync after an HAProxy restart', () => {
  it('pushes the etcd weight again to the new HAProxy process', async () => {
    restores.push(etcdOverride(`lb/weights/${api1}`, '5'));
    await waitFor(async () => (await weightOf(api1)) === 5, { timeoutMs: 3000, what: 'weight 5 applied' });

    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.haproxy.name}.pid`), 'utf8'));
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !isAlive(pid), { what: 'haproxy gone' });
    execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    const w = await waitFor(async () => ((await weightOf(api1)) === 5 ? 5 : undefined), {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'weight 5 re-applied after the restart',
    });
    expect(w).toBe(5);
  });
});
