/**
 * `shardgate-ctl` input and reports (from an outside check), against the local stack's etcd:
 * - `breakers set` and `lb weight` read a number alike and write its canonical form (`007` →
 *   `7`); a fraction, `7.0` included, is refused by both;
 * - `shards list` (text and --json) and `status` mark a shard key the schema or the instances
 *   reject, and `status` does not claim no instance was reachable for it;
 * - `status` with a SHARDGATE_HAPROXY_SOCKET naming no socket says so (exit 0);
 * - `lb weight '' 5` names the empty instance id.
 *
 * Most tests run under their own prefix `/ca-<hex>/` (no instance reads it); the one that needs the
 * running instances' verdict adds a shard `ca-…` under the stack's prefix and deletes that single
 * key at the end.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdDelKey, etcdGet, etcdGetKey, etcdPutKey } from './helpers/etcd.js';
import { waitFor } from './helpers/wait-for.js';

const ONE_LINE = /^shardgate-ctl: [^\n]+\n$/;
const PREFIX = `/ca-${randomBytes(4).toString('hex')}/`;
const env = { SHARDGATE_ETCD_PREFIX: PREFIX };
const own = new Set<string>();
const stackKeys = new Set<string>();
afterAll(() => {
  for (const key of own) if (etcdGetKey(`${PREFIX}${key}`) !== undefined) etcdDelKey(`${PREFIX}${key}`);
  for (const key of stackKeys) if (etcdGet(key) !== undefined) etcdDel(key);
});
const get = (key: string) => etcdGetKey(`${PREFIX}${key}`);
function run(args: string[], extra: Record<string, string> = {}) {
  if (args[0] === 'breakers' && args[1] === 'set') own.add(`breakers/${args[2]}/${args[3]}`);
  if (args[0] === 'lb' && args[1] === 'weight' && args[2]) own.add(`lb/weights/${args[2]}`);
  return ctl(args, { ...env, ...extra });
}

describe('numbers: breakers set and lb weight read and write them alike', () => {
  it('breakers set writes " 7 " as 7 and refuses 007 and 7.0, as lb weight does and as the instances do; a stored 7.0 (rejected by the instances) is rewritten as 7', () => {
    const key = 'breakers/redis/failure_threshold';
    const r = run(['breakers', 'set', 'redis', 'failure_threshold', ' 7 ']);
    expect(r.code, r.stderr).toBe(0);
    expect(get(key)).toBe('7');
    for (const bad of ['007', '010', '7.0', '7.5', '-7']) {
      const refused = run(['breakers', 'set', 'redis', 'failure_threshold', bad]);
      expect(refused.code, bad).toBe(1);
      expect(refused.stderr).toMatch(ONE_LINE);
      expect(refused.stderr).toContain(`${PREFIX}${key}`);
      expect(refused.stderr).toContain('whole number');
    }
    expect(run(['breakers', 'set', 'redis', 'failure_threshold', '010']).stderr).toContain('leading zero');
    expect(get(key)).toBe('7');
    // a value etcdctl put as 7.0, which the instances reject: typing 7 writes it as they take it
    etcdPutKey(`${PREFIX}${key}`, '7.0');
    expect(run(['breakers', 'set', 'redis', 'failure_threshold', '7']).code).toBe(0);
    expect(get(key)).toBe('7');
    expect(run(['breakers', 'set', 'redis', 'failure_threshold', '7 ']).stdout).toBe('no changes\n');
    expect(run(['breakers', 'set', 'redis', 'failure_threshold', '8']).code).toBe(0);
    expect(get(key)).toBe('8');

    // lb weight: the same reading
    const id = `ca-w-${randomBytes(2).toString('hex')}`;
    const weight = `lb/weights/${id}`;
    const refused = run(['lb', 'weight', id, '1.0']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain(`${PREFIX}${weight}`);
    expect(get(weight)).toBeUndefined();
    expect(run(['lb', 'weight', id, '007']).code).toBe(1);
    expect(get(weight)).toBeUndefined();
    const typed = run(['lb', 'weight', id, ' 7']);
    expect(typed.code, typed.stderr).toBe(0);
    expect(get(weight)).toBe('7');
    etcdPutKey(`${PREFIX}${weight}`, '7.0');
    expect(run(['lb', 'weight', id, '7']).code).toBe(0);
    expect(get(weight)).toBe('7');
    expect(run(['lb', 'weight', id, '7']).stdout).toBe('no changes\n');
    expect(run(['lb', 'weight', id, '1.5']).code).toBe(1);
    expect(get(weight)).toBe('7');
  });
});

describe('lb weight with an empty instance id', () => {
  it('says the id is empty and the pattern it must match', () => {
    for (const command of [
      ['lb', 'weight', '', '5'],
      ['lb', 'unset', ''],
    ]) {
      const r = ctl(command, env);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain('invalid instance id "": it is empty');
      expect(r.stderr).toContain('must match ^[A-Za-z0-9]');
      expect(r.stderr).not.toContain('unknown key');
    }
  });
});

describe('shards list and status mark a rejected shard key', () => {
  it('a shard key holding invalid JSON is listed with its problem (text, --json, status)', () => {
    const id = `ca-bad-${randomBytes(2).toString('hex')}`;
    own.add(`shards/${id}`);
    etcdPutKey(`${PREFIX}shards/${id}`, '{not json');
    const text = run(['shards', 'list']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^${id} .*problem: must be valid JSON$`, 'm'));
    const rows = JSON.parse(run(['shards', 'list', '--json']).stdout) as Record<string, unknown>[];
    expect(rows.find((r) => r.id === id)).toMatchObject({
      id,
      master: null,
      problem: 'must be valid JSON',
      value: '{not json',
    });
    const status = run(['status']);
    expect(status.code).toBe(0);
    expect(status.stdout).toMatch(new RegExp(`^  ${id} .*problem: must be valid JSON$`, 'm'));
    const view = JSON.parse(run(['status', '--json']).stdout) as { shards: Record<string, unknown>[] };
    expect(view.shards.find((s) => s.id === id)).toMatchObject({ problem: 'must be valid JSON' });
  });

  it('a shard the instances reject (its master outside their SHARDGATE_DB_HOSTS) is marked, naming them', async () => {
    const id = `ca-s4-${randomBytes(2).toString('hex')}`;
    stackKeys.add(`shards/${id}`);
    // the CLI here has no SHARDGATE_DB_HOSTS: it takes the value; the stack's instances allow 127.0.0.1 only
    const add = ctl(['shards', 'add', id, '--master', 'localhost:3316']);
    expect(add.code, add.stderr).toBe(0);
    const line = await waitFor(
      () =>
        ctl(['shards', 'list'])
          .stdout.split('\n')
          .find((l) => l.startsWith(`${id} `) && l.includes('problem:')),
      { timeoutMs: 8000, what: `shards list marking ${id}` },
    );
    expect(line).toMatch(/problem: rejected by api-\d.*not in SHARDGATE_DB_HOSTS/);
    const rows = JSON.parse(ctl(['shards', 'list', '--json']).stdout) as Record<string, unknown>[];
    expect(rows.find((r) => r.id === id)).toMatchObject({
      problem: expect.stringContaining('not in SHARDGATE_DB_HOSTS'),
      rejectedBy: expect.arrayContaining([expect.stringMatching(/^api-/)]),
    });
    const status = ctl(['status']).stdout.split('\n');
    const at = status.findIndex((l) => l.startsWith(`  ${id} `));
    expect(status[at]).toContain('problem: rejected by api-');
    expect(status[at + 1]).toContain('replica lag: not measured');
    expect(status[at + 1]).not.toContain('no instance reachable');
  });
});

describe('status with an unreachable HAProxy socket', () => {
  it('says the socket could not be reached, and --json gives an error, exit 0', () => {
    const extra = { SHARDGATE_HAPROXY_SOCKET: '/nonexist.sock' };
    const text = run(['status'], extra);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^haproxy: socket \/nonexist\.sock could not be reached \(.+\)/m);
    const json = run(['status', '--json'], extra);
    expect(json.code).toBe(0);
    const view = JSON.parse(json.stdout) as { haproxy: { error?: string; servers: unknown } | null };
    expect(view.haproxy).not.toBeNull();
    expect(view.haproxy?.servers).toBeNull();
    expect(view.haproxy?.error).toContain('/nonexist.sock');
  });
});
