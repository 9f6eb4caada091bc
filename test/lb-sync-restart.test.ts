/**
 * `lb sync --watch` re-applies etcd weights after HAProxy restarts (issue "control plane" item 2):
 * a fresh HAProxy starts from its config file's weights; within a few seconds the daemon has
 * pushed the etcd weight again through the runtime API. Each instance's agent-check applies the
 * etcd weight as well, so it is disabled on the new HAProxy for the check, and the daemon's log
 * must show the command it sent (api-1 is frozen over the restart, so its agent cannot be first).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { haproxyCommand, showServers } from '../control-plane/lb/haproxy-runtime.js';
import { startHaproxy } from '../stack/haproxy.js';
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

    // api-1's agent-check applies the etcd weight too, and on a new process it answered before
    // the test could disable it (its first checks come within a second; in CI the daemon then
    // had nothing to send). So api-1 is frozen while HAProxy restarts: its agent cannot answer
    // until the agent is disabled on the new process, and only the daemon can set the weight.
    // HAProxy is started as `stack up` starts it, since `up` would resume the frozen instance.
    const logFile = join(LOG_DIR, `${topology.lbSync.name}.log`);
    const logFrom = statSync(logFile).size;
    const api1Pid = Number(readFileSync(join(STATE_DIR, 'pids', `${api1}.pid`), 'utf8'));
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${topology.haproxy.name}.pid`), 'utf8'));
    process.kill(api1Pid, 'SIGSTOP');
    try {
      process.kill(pid, 'SIGKILL');
      await waitFor(() => !isAlive(pid), { what: 'haproxy gone' });
      await startHaproxy();
      await waitFor(
        async () => (await haproxyCommand(HAPROXY_SOCKET, `disable agent ${server}`)).trim() === '',
        { timeoutMs: 5000, intervalMs: 20, what: `disable agent ${server} on the new HAProxy` },
      );
    } finally {
      process.kill(api1Pid, 'SIGCONT');
    }
    try {
      await waitFor(async () => (await weightOf(api1)) === 5, {
        timeoutMs: 5000,
        intervalMs: 100,
        what: 'weight 5 re-applied after the restart, its agent-check disabled',
      });
      // and it was the daemon that sent it
      // bytes from the size taken above (the log holds multi-byte characters: `→`)
      const sent = readFileSync(logFile).subarray(logFrom).toString('utf8');
      expect(sent).toContain(`applied: set server ${server} weight 5\n`);
    } finally {
      await haproxyCommand(HAPROXY_SOCKET, `enable agent ${server}`);
    }
  });
});
