/**
 * `lb sync --watch` re-applies etcd weights after HAProxy restarts (issue "control plane" item 2):
 * a fresh HAProxy starts from its config file's weights; within a few seconds the daemon has
 * pushed the etcd weight again through the runtime API. Each instance's agent-check applies the
 * etcd weight as well, so it is disabled on the new HAProxy for the check, and the daemon's log
 * must show the command it sent (the restart is tried again when the agent was first).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyCommand, showServers } from '../control-plane/lb/haproxy-runtime.js';
import { HAPROXY_SOCKET, LOG_DIR, STATE_DIR } from '../stack/paths.js';
import { isAlive } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';
import { etcdOverride } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const api1 = topology.apis[0]!.id;
const server = `${topology.haproxy.backend}/${api1}`;
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

    // Each instance's agent-check applies the etcd weight too, and may do so on the new process
    // before the test can disable it (its first checks are spread over a second): then the
    // daemon finds nothing to send. So the restart is tried up to 3 times, until the daemon's
    // own line shows it sent the weight; a daemon that never re-applies fails all 3.
    const logFile = join(LOG_DIR, `${topology.lbSync.name}.log`);
    const tries: string[] = [];
    for (let attempt = 1; attempt <= 3; attempt++) {
      const logFrom = statSync(logFile).size;
      const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.haproxy.name}.pid`), 'utf8'));
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !isAlive(pid), { what: 'haproxy gone' });
      execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'up'], {
        encoding: 'utf8',
        timeout: 120_000,
      });
      await waitFor(
        async () => (await haproxyCommand(HAPROXY_SOCKET, `disable agent ${server}`)).trim() === '',
        { timeoutMs: 5000, intervalMs: 20, what: `disable agent ${server} on the new HAProxy` },
      );
      try {
        await waitFor(async () => (await weightOf(api1)) === 5, {
          timeoutMs: 5000,
          intervalMs: 100,
          what: 'weight 5 re-applied after the restart, its agent-check disabled',
        });
        // bytes from the size taken above (the log holds multi-byte characters: `→`)
        const sent = readFileSync(logFile).subarray(logFrom).toString('utf8');
        tries.push(sent);
        if (sent.includes(`applied: set server ${server} weight 5\n`)) break;
      } finally {
        await haproxyCommand(HAPROXY_SOCKET, `enable agent ${server}`);
      }
    }
    // and it was the daemon that sent it, on one of the restarts
    expect(tries.at(-1)).toContain(`applied: set server ${server} weight 5\n`);
  });
});
