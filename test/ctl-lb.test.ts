/**
 * `shardgate-ctl lb weight` and `lb sync` against the real etcd and HAProxy of the local stack: an
 * unknown backend is a user error, a weighted instance without a server in the backend is named
 * (with --watch once per change of that set, not every tick), and a weight for an instance that
 * is not registered is written with a warning.
 *
 * Every weight made here is for an instance id starting with `ct-` (no HAProxy server has one);
 * each key is removed with a single-key delete at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { HAPROXY_SOCKET } from '../stack/paths.js';
import { topology } from '../stack/topology.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const ONE_LINE = /^shardgate-ctl: [^\n]+ \(see shardgate-ctl [^\n]*--help\)\n$/;
const BIN = fileURLToPath(new URL('../control-plane/bin/shardgate-ctl.js', import.meta.url));
const unique = (label: string) => `ct-${label}-${randomBytes(3).toString('hex')}`;

const created = new Set<string>();
afterAll(() => {
  for (const key of created) if (etcdGet(key) !== undefined) etcdDel(key);
});
function put(key: string, value: string): void {
  created.add(key);
  etcdPut(key, value);
}

describe('shardgate-ctl lb sync', () => {
  it('a backend HAProxy does not have is a user error, not "already matches"', () => {
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET, '--backend', 'ct-bogus']);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain(`lb sync: haproxy at ${HAPROXY_SOCKET} has no backend ct-bogus (--backend)`);
    expect(r.code).toBe(1);
  });

  it('--watch with such a backend exits 1 too, once it reaches HAProxy, instead of running on', () => {
    const r = ctl(['lb', 'sync', '--watch', '--socket', HAPROXY_SOCKET, '--backend', 'ct-bogus']);
    expect(r.stderr).toMatch(ONE_LINE);
    expect(r.stderr).toContain('has no backend ct-bogus (--backend)');
    expect(r.code).toBe(1);
  });

  it('names a weighted instance that has no server in the backend', () => {
    const id = unique('noserver');
    put(`lb/weights/${id}`, '2');
    const r = ctl(['lb', 'sync', '--socket', HAPROXY_SOCKET]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: lb sync: warning: no server in haproxy backend ${topology.haproxy.backend} for [^\\n]*lb/weights/${id}[,;][^\\n]*not applied\\n$`,
      ),
    );
  });

  it('--watch names those instances once per change of that set, not every tick', async () => {
    const first = unique('watch');
    put(`lb/weights/${first}`, '1');
    const child = spawn(
      process.execPath,
      [BIN, 'lb', 'sync', '--watch', '--interval-ms', '100', '--socket', HAPROXY_SOCKET],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let output = '';
    child.stdout.on('data', (d) => {
      output += String(d);
    });
    child.stderr.on('data', (d) => {
      output += String(d);
    });
    const warnings = () => output.split('\n').filter((l) => l.includes('no server in haproxy backend'));
    try {
      await waitFor(() => warnings().length > 0, { timeoutMs: 10_000, what: 'the first warning' });
      expect(warnings()[0]).toContain(first);
      // twenty ticks and a weight change that leaves the set as it is: no new warning
      await new Promise((r) => setTimeout(r, 1000));
      put(`lb/weights/${first}`, '3');
      await new Promise((r) => setTimeout(r, 1000));
      expect(warnings(), output).toHaveLength(1);
      // the set changes: one more
      const second = unique('watch');
      put(`lb/weights/${second}`, '1');
      await waitFor(() => warnings().length > 1, { timeoutMs: 5000, what: 'the second warning' });
      await new Promise((r) => setTimeout(r, 1000));
      expect(warnings(), output).toHaveLength(2);
      expect(warnings()[1]).toContain(second);
    } finally {
      child.kill('SIGTERM');
    }
    const code = await new Promise<number | null>((r) => child.once('exit', r));
    expect(code, output).toBe(0);
  });
});

describe('shardgate-ctl lb weight', () => {
  it('writes the weight of an instance that is not registered, warning on stderr', () => {
    const id = unique('unregistered');
    created.add(`lb/weights/${id}`);
    const r = ctl(['lb', 'weight', id, '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe(
      `shardgate-ctl: lb weight: warning: instance ${id} is not registered now (no /shardgate/instances/${id}); the weight applies once it registers\n`,
    );
    expect(etcdGet(`lb/weights/${id}`)).toBe('2');

    // a registered instance: no warning (its weight as it is, so nothing changes)
    const api1 = topology.apis[0]!.id;
    const same = ctl(['lb', 'weight', api1, etcdGet(`lb/weights/${api1}`) ?? '1']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toBe('');
  });
});
