/**
 * One-shot `lb sync` and a weight key the schema rejects: the weight in force is the key's last
 * good value from etcd's history (as the instances and the --watch daemon keep it), and a key with
 * none is left alone, never taken for an absent key and given its haproxy.cfg weight.
 *
 * Runs under a prefix of its own (`/ct-lbrej-<hex>/`, outside /shardgate/) against a real HAProxy
 * of its own (its runtime socket, free ports): the stack's HAProxy and its keys are not touched.
 * Each key made is removed with a single-key delete at the end.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { haproxyCommand, showServers } from '../control-plane/lb/haproxy-runtime.js';
import {
  CORS_MAP_FILE,
  CORS_MAP_SEED,
  type HaproxyServer,
  renderHaproxyConfig,
} from '../stack/haproxy-config.js';
import { binary } from '../stack/preflight.js';
import { topology } from '../stack/topology.js';
import { ctlAsync } from './helpers/ctl.js';
import { etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const prefix = `/ct-lbrej-${randomBytes(3).toString('hex')}/`;
const env = { SHARDGATE_ETCD_PREFIX: prefix };
const made = new Set<string>();
const haproxys: ChildProcess[] = [];
const BACKEND = topology.haproxy.backend;
afterAll(() => {
  for (const key of made) if (etcdGetKey(key) !== undefined) etcdDelKey(key);
  for (const h of haproxys) h.kill('SIGKILL');
});
function put(key: string, value: string): void {
  made.add(`${prefix}${key}`);
  etcdPutKey(`${prefix}${key}`, value);
}

/**
 * A real HAProxy of this test's own (rendered as the stack's, its own socket and `freePort`
 * ports), backend `api` with servers api-1 and api-2 at haproxy.cfg weight 10, set by its runtime
 * API to the live `weights` given. Their addresses and agents are closed ports: nothing of the
 * stack's reaches it (an agent would apply the stack's own weights), and a weight is set on a
 * server that is down all the same.
 */
async function haproxyWith(weights: Record<'api-1' | 'api-2', number>): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'sg-lbrej-'));
  const socketPath = join(dir, 'haproxy.sock');
  const host = topology.host;
  const servers: HaproxyServer[] = [];
  for (const name of ['api-1', 'api-2'])
    servers.push({ name, host, port: await freePort(host), agentPort: await freePort(host), weight: 10 });
  const cfg = join(dir, 'haproxy.cfg');
  const corsMapFile = join(dir, CORS_MAP_FILE);
  writeFileSync(corsMapFile, CORS_MAP_SEED);
  writeFileSync(
    cfg,
    renderHaproxyConfig({
      bindHost: host,
      servers,
      socketPath,
      port: await freePort(host),
      statsPort: await freePort(host),
      corsMapFile,
    }),
  );
  const child = spawn(binary('haproxy'), ['-db', '-f', cfg], { stdio: 'ignore' });
  haproxys.push(child);
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`haproxy exited ${child.exitCode}`);
      return (await showServers(socketPath, BACKEND)).length === 2;
    },
    { timeoutMs: 5000, intervalMs: 50, what: 'the test HAProxy answering on its runtime socket' },
  );
  for (const [name, weight] of Object.entries(weights))
    await haproxyCommand(socketPath, `set server ${BACKEND}/${name} weight ${weight}`);
  expect(await liveWeights(socketPath)).toEqual({ 'api-1': weights['api-1'], 'api-2': weights['api-2'] });
  return socketPath;
}

/** server → its live weight, as `show servers state` reports it */
async function liveWeights(socketPath: string): Promise<Record<string, number>> {
  return Object.fromEntries((await showServers(socketPath, BACKEND)).map((s) => [s.name, s.weight]));
}

describe('one-shot lb sync: a rejected weight key', () => {
  it('applies the last good value, as the instances keep it, not the haproxy.cfg weight', async () => {
    put('lb/weights/api-2', '7');
    put('lb/weights/api-2', 'abc');
    const socket = await haproxyWith({ 'api-1': 10, 'api-2': 3 });
    const r = await ctlAsync(['lb', 'sync', '--socket', socket], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('applied: set server api/api-2 weight 7\n');
    expect(r.stdout).not.toContain('no lb/weights/api-2');
    expect(await liveWeights(socket)).toEqual({ 'api-1': 10, 'api-2': 7 });
    expect(r.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: lb sync: warning: ${prefix}lb/weights/api-2 is rejected \\([^\\n]*\\); its last good value 7 \\(revision \\d+\\) applies, as the instances keep it\\n$`,
      ),
    );
    // HAProxy already at it: nothing sent
    const again = await ctlAsync(['lb', 'sync', '--socket', socket], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^haproxy already matches etcd \(1 weight\(s\) applied; 1 server\(s\) without/,
    );
  });

  it('leaves a server alone whose key never held a valid weight, and never says it has no key', async () => {
    // api-2's key holds a rejected value, its last good value 7 in force (made here, so this test
    // does not depend on the one above)
    put('lb/weights/api-2', '7');
    put('lb/weights/api-2', 'abc');
    put('lb/weights/api-1', 'abc');
    const socket = await haproxyWith({ 'api-1': 4, 'api-2': 7 });
    const r = await ctlAsync(['lb', 'sync', '--socket', socket], env);
    expect(r.code, r.stderr).toBe(0);
    // api-1 left at the weight it has (not its haproxy.cfg 10), api-2 at its last good value
    expect(await liveWeights(socket)).toEqual({ 'api-1': 4, 'api-2': 7 });
    expect(r.stdout).not.toContain('no lb/weights/api-1');
    expect(r.stdout).toMatch(
      // this test's prefix has no cors/allowed_origins: none, and the HAProxy's map is empty
      /^haproxy already matches etcd \(1 weight\(s\) applied; 1 server\(s\) with a rejected weight left as they are; cors\/allowed_origins: 0 origin\(s\)\)\n$/,
    );
    expect(r.stderr).toContain(`${prefix}lb/weights/api-1 is rejected (`);
    expect(r.stderr).toContain(
      "no last good value in etcd's history: server api-1 left at the weight it has",
    );
    expect(r.stderr.split('\n')).toHaveLength(2);
  });
});
