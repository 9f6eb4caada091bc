/**
 * The local stack's MariaDB probe (stack/probes.ts mysqlLogin, used by `stack up` and `stack
 * status`) against the real nodes: it logs in and quits, so the server's log gets no "Aborted
 * connection … 'unauthenticated'" warning per probe, as it did when the probe read the greeting
 * and hung up; a node that refuses root's login still answers, so it is up; and a node that holds
 * its port but does not answer (SIGSTOP) is not healthy.
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LOG_DIR, STATE_DIR } from '../stack/paths.js';
import { mysqlLogin } from '../stack/probes.js';
import { topology } from '../stack/topology.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the stack MariaDB probe', () => {
  it('logs in and quits: true, and nothing in the server log', async () => {
    const node = topology.shards[0]!.master;
    const log = join(LOG_DIR, `${node.name}.log`);
    const from = statSync(log).size;
    for (let i = 0; i < 5; i++) expect(await mysqlLogin(node.port)).toBe(true);
    // the server writes its warning once it sees the connection closed
    await sleep(500);
    expect(readFileSync(log).subarray(from).toString('utf8')).not.toContain('Aborted connection');
  });

  it('true when the server refuses the login: it answers, so it is up (a root password set by hand)', async () => {
    expect(await mysqlLogin(topology.shards[0]!.master.port, { user: 'no-such-user' })).toBe(true);
  });

  it('false for a port that is no MariaDB (an API instance) and for a frozen node, within its timeout', async () => {
    const api = topology.apis[0]!;
    let started = Date.now();
    expect(await mysqlLogin(api.port, { timeoutMs: 500 })).toBe(false);
    expect(Date.now() - started).toBeLessThan(2000);

    const node = topology.shards[1]!.replicas[0]!;
    const pid = Number(readFileSync(join(STATE_DIR, 'pids', `${node.name}.pid`), 'utf8'));
    process.kill(pid, 'SIGSTOP');
    try {
      started = Date.now();
      expect(await mysqlLogin(node.port, { timeoutMs: 500 })).toBe(false);
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(await mysqlLogin(node.port)).toBe(true);
  });
});
