/**
 * `shardgate-ctl config` files: a file that is no config text (a device) is refused in
 * one line; `config apply` judges the keys it warns about as the instances do (over the values in
 * force); `config export` leaves out a key no file can hold (a nested unknown key, an unknown
 * top-level key), naming it, so export → apply stays a no-op. Everything under a prefix of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removalRecordKey } from '../control-plane/removal-record.js';
import { ctl } from './helpers/ctl.js';
import { etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';

const PREFIX = `/cb-${randomBytes(4).toString('hex')}/`;
const env = { SHARDGATE_ETCD_PREFIX: PREFIX };
const dir = mkdtempSync(join(tmpdir(), 'sg-ctl-small-b-'));
const created = new Set<string>();
const put = (key: string, value: string) => {
  created.add(key);
  etcdPutKey(`${PREFIX}${key}`, value);
};
const shard = (port: number) =>
  JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [], database: 'shardgate' });
const TENANT = (s: string) => JSON.stringify({ shard: s, status: 'active' });
const ONE_LINE = /^shardgate-ctl: [^\n]+\n$/;

/** removal records beside the prefix (full keys) */
const records = new Set<string>();

afterAll(() => {
  for (const key of created) etcdDelKey(`${PREFIX}${key}`);
  for (const key of records) etcdDelKey(key);
});

describe('shardgate-ctl config: small fixes', () => {
  it('config apply refuses a YAML tag it does not resolve in one line, without the library warning', () => {
    // an outside check: `!!float 61` printed a raw YAMLWarning, then "written as a string"
    const file = join(dir, 'tagged.yaml');
    for (const value of ['!!float 61', '!!str {a: 1}']) {
      writeFileSync(file, `cache:\n  ttl_seconds: ${value}\n`);
      const r = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
      expect(r.code, value).toBe(1);
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain(`${file} is not valid YAML: Unresolved tag: tag:yaml.org,2002:`);
    }
  });

  it('config apply refuses a number written as a string with blanks or a BOM, or not as plain digits, naming each key in one line', () => {
    // an outside check: " 61", "61\n" and "\ufeff61 " were applied (the BOM and the blank written
    // to etcd as they were), and so were 1e2, 0x3e, 0o76, -0 and 10.0, which lb weight refuses
    const file = join(dir, 'numbers.yaml');
    const cases: [string, string, string][] = [
      [
        'cache/ttl_seconds',
        '" 61"',
        'a number or true/false written as a string (" 61"); write it without quotes',
      ],
      ['cache/ttl_seconds', '"61\\n"', 'a number or true/false written as a string ("61\\u000a")'],
      ['cache/ttl_seconds', '"\\ufeff61 "', 'a number or true/false written as a string ("\\ufeff61 ")'],
      [
        'cache/ttl_seconds',
        '1e2',
        'written 1e2, which YAML reads as 100: write a number as decimal digits only',
      ],
      ['breakers/redis/failure_threshold', '0x3e', 'written 0x3e, which YAML reads as 62'],
      ['breakers/redis/failure_threshold', '0o76', 'written 0o76, which YAML reads as 62'],
      ['lb/weights/cb-api', '-0', 'written -0, which YAML reads as 0'],
      ['lb/weights/cb-api', '10.0', 'written 10.0, which YAML reads as 10'],
    ];
    for (const [key, value, reason] of cases) {
      created.add(key); // deleted at the end should an apply write it after all
      const [a, b, c] = key.split('/');
      writeFileSync(file, c ? `${a}:\n  ${b}:\n    ${c}: ${value}\n` : `${a}:\n  ${b}: ${value}\n`);
      const r = ctl(['config', 'apply', '-f', file], env);
      expect(r.code, value).toBe(1);
      expect(r.stdout, value).toBe('');
      expect(r.stderr, value).toMatch(ONE_LINE);
      expect(r.stderr, value).toContain(`config apply: invalid ${PREFIX}${key}: ${reason}`);
      expect(etcdGetKey(`${PREFIX}${key}`), value).toBeUndefined();
    }
    // a JSON file is judged the same: 10.0 is no plain number there either
    const json = join(dir, 'numbers.json');
    writeFileSync(json, '{"cache": {"ttl_seconds": 10.0}}\n');
    const fromJson = ctl(['config', 'apply', '-f', json], env);
    expect(fromJson.code).toBe(1);
    expect(fromJson.stderr).toMatch(ONE_LINE);
    expect(fromJson.stderr).toContain(
      `invalid ${PREFIX}cache/ttl_seconds: written 10.0, which JSON reads as 10`,
    );
    // plain digits are applied
    writeFileSync(file, 'cache:\n  ttl_seconds: 61\n');
    const plain = ctl(['config', 'apply', '-f', file], env);
    expect(plain.code, plain.stderr).toBe(0);
    expect(etcdGetKey(`${PREFIX}cache/ttl_seconds`)).toBe('61');
  });

  it('shards add and config apply warn of a passwordEnv this environment lacks, and write it', () => {
    // an outside check: `shards add --password-env SHARDGATE_DB_PASSWORD_NOPE` wrote with exit 0
    // and no word, and every instance then rejected the shard
    const missing = 'SHARDGATE_DB_PASSWORD_CB_NOPE';
    expect(process.env[missing]).toBeUndefined();
    const id = `cb-pw-${randomBytes(3).toString('hex')}`;
    created.add(`shards/${id}`);
    const added = ctl(['shards', 'add', id, '--master', '127.0.0.1:3316', '--password-env', missing], env);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toBe(
      `shardgate-ctl: shards add: warning: shard ${id}'s passwordEnv ${missing} is not set in this command's environment: an instance whose environment lacks it too rejects the shard's entry (check GET /health/config or shardgate-ctl status)\n`,
    );
    expect(JSON.parse(etcdGetKey(`${PREFIX}shards/${id}`)!).passwordEnv).toBe(missing);
    // set here (empty counts: a passwordless account): no warning
    const other = `cb-pw-${randomBytes(3).toString('hex')}`;
    created.add(`shards/${other}`);
    const quiet = ctl(['shards', 'add', other, '--master', '127.0.0.1:3326', '--password-env', missing], {
      ...env,
      [missing]: '',
    });
    expect(quiet.code, quiet.stderr).toBe(0);
    expect(quiet.stderr).toBe('');
    // config apply: a shard the file writes with the variable, warned before the write, in a dry
    // run too; one whose passwordEnv the file leaves as it is, not
    const third = `cb-pw-${randomBytes(3).toString('hex')}`;
    const file = join(dir, 'password-env.yaml');
    const entry = (port: number) =>
      `{master: {host: 127.0.0.1, port: ${port}}, replicas: [], database: shardgate, passwordEnv: ${missing}}`;
    writeFileSync(file, `shards:\n  ${other}: ${entry(3326)}\n  ${third}: ${entry(3316)}\n`);
    const dry = ctl(['config', 'apply', '-f', file, '--dry-run', '--force'], env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toBe(
      `shardgate-ctl: config apply: warning: shard ${third}'s passwordEnv ${missing} is not set in this command's environment: an instance whose environment lacks it too rejects the shard's entry (check GET /health/config or shardgate-ctl status)\n`,
    );
    expect(dry.stdout).toContain('dry run: 1 change(s) not applied');
    expect(etcdGetKey(`${PREFIX}shards/${third}`)).toBeUndefined();
  });

  it('config apply warns, before it writes, of the servers a file names anew that shards add or set-master would refuse; --force asks nothing', () => {
    // an outside check: a file pointed a shard at a read-only replica and added one at a dead
    // address; the dry run listed both without a word
    const yaml = (id: string, port: number) =>
      `shards:\n  ${id}:\n    master:\n      host: 127.0.0.1\n      port: ${port}\n    replicas: []\n    database: shardgate\n`;
    const fresh = `cs-dead-${randomBytes(3).toString('hex')}`;
    const file = join(dir, 'servers.yaml');
    writeFileSync(file, yaml(fresh, 1)); // nothing listens on port 1
    const dead = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(dead.code, dead.stderr).toBe(0);
    expect(dead.stderr).toContain(
      `shardgate-ctl: config apply: warning: shard ${fresh}'s master 127.0.0.1:1 unreachable (`,
    );
    expect(dead.stdout).toContain('dry run: 1 change(s) not applied');

    // a shard of this prefix whose master moves to shard-1's replica (read-only, replicating)
    const moved = `cs-ro-${randomBytes(3).toString('hex')}`;
    put(`shards/${moved}`, shard(3326));
    writeFileSync(file, yaml(moved, 3317));
    const withPassword = { ...env, SHARDGATE_DB_PASSWORD: 'shardgate' };
    const readOnly = ctl(['config', 'apply', '-f', file, '--dry-run'], withPassword);
    expect(readOnly.code, readOnly.stderr).toBe(0);
    expect(readOnly.stderr).toContain(
      `shardgate-ctl: config apply: warning: shard ${moved}'s new master 127.0.0.1:3317: it is read-only`,
    );
    expect(readOnly.stderr).toContain('it still replicates from');
    // --force asks for no such check, as for the export revision
    const forced = ctl(['config', 'apply', '-f', file, '--force'], withPassword);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toBe('');
    expect(forced.stdout).toContain('applied 1 change(s)');
  });

  it('config apply refuses a tenant it adds on a shard `tenants remove` left its rows on, unless --force', () => {
    put('shards/cb-s3', shard(3316));
    put('shards/cb-s4', shard(3326));
    const record = removalRecordKey(PREFIX, 'cb-back', 'cb-s3');
    records.add(record);
    etcdPutKey(record, JSON.stringify({ removedAt: '2026-12-05T01:00:00.000Z', rows: 'unchecked' }));
    const file = join(dir, 'back.yaml');
    writeFileSync(file, 'tenants:\n  cb-back: {shard: cb-s3, status: active}\n');
    const refused = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(refused.code, refused.stderr).toBe(1);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(ONE_LINE);
    expect(refused.stderr).toContain(`${PREFIX}tenants/cb-back`);
    expect(refused.stderr).toContain(
      'tenant id cb-back was removed from shard cb-s3 at 2026-12-05T01:00:00.000Z with its rows left there: a tenant of that id there gets them back',
    );
    expect(refused.stderr).toContain('(--adopt-rows brings that tenant back)');
    // on another shard, nothing comes back
    writeFileSync(file, 'tenants:\n  cb-back: {shard: cb-s4, status: active}\n');
    const elsewhere = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(elsewhere.code, elsewhere.stderr).toBe(0);
    expect(elsewhere.stdout).toContain('dry run: 1 change(s) not applied');
    // --adopt-rows applies it, as a bring-back on purpose, and the record goes
    writeFileSync(file, 'tenants:\n  cb-back: {shard: cb-s3, status: active}\n');
    created.add('tenants/cb-back');
    const adopted = ctl(['config', 'apply', '-f', file, '--adopt-rows'], env);
    expect(adopted.code, adopted.stderr).toBe(0);
    expect(adopted.stdout).toContain('applied 1 change(s)');
    expect(etcdGetKey(record)).toBeUndefined();
    // a file that deletes the entry (--prune) records it: this path counts no rows
    writeFileSync(
      file,
      'shards:\n  cb-s3: {master: {host: 127.0.0.1, port: 3316}, replicas: [], database: shardgate}\n',
    );
    const pruned = ctl(['config', 'apply', '-f', file, '--prune', '--force'], env);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain(
      'tenant cb-back removed from the directory: its rows stay on shard cb-s3, and `tenants create` of the id there refuses it while they cannot be counted, unless --adopt-rows',
    );
    expect(JSON.parse(etcdGetKey(record)!)).toMatchObject({ rows: 'unchecked' });
    // --force brings it back too (it skips every check), and takes the record away
    writeFileSync(file, 'tenants:\n  cb-back: {shard: cb-s3, status: active}\n');
    const forced = ctl(['config', 'apply', '-f', file, '--force'], env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(etcdGetKey(record)).toBeUndefined();
  });

  it('config apply --prune of many tenants says so in one line, not one per tenant', () => {
    // an outside check's --prune of 10,000 tenants printed 10,000 lines of ~170 characters;
    // under a prefix of its own, so the prune meets only these tenants
    const prefix = `/cb-bulk-${randomBytes(4).toString('hex')}/`;
    const ids = Array.from({ length: 12 }, (_, i) => `cb-bulk-${String(i).padStart(2, '0')}`);
    const keys = ['shards/cb-s7', ...ids.map((id) => `tenants/${id}`)];
    try {
      etcdPutKey(`${prefix}shards/cb-s7`, shard(3326));
      for (const id of ids) {
        etcdPutKey(`${prefix}tenants/${id}`, TENANT('cb-s7'));
        records.add(removalRecordKey(prefix, id, 'cb-s7'));
      }
      const file = join(dir, 'bulk-prune.yaml');
      writeFileSync(
        file,
        'shards:\n  cb-s7: {master: {host: 127.0.0.1, port: 3326}, replicas: [], database: shardgate}\n',
      );
      const pruned = ctl(['config', 'apply', '-f', file, '--prune', '--force'], {
        SHARDGATE_ETCD_PREFIX: prefix,
      });
      expect(pruned.code, pruned.stderr).toBe(0);
      const lines = pruned.stdout.split('\n').filter((l) => l.includes('removed from the directory'));
      expect(lines).toEqual([
        `12 tenants removed from the directory (${ids.slice(0, 10).join(', ')}, …): the rows of each stay on its shard, and \`tenants create\` of the id there refuses it while they cannot be counted, unless --adopt-rows; \`tenants delete-rows <id> --shard <shard> --yes\` deletes them`,
      ]);
      for (const id of ids)
        expect(JSON.parse(etcdGetKey(removalRecordKey(prefix, id, 'cb-s7'))!)).toMatchObject({
          rows: 'unchecked',
        });
    } finally {
      for (const key of keys) etcdDelKey(`${prefix}${key}`);
    }
  });

  it('config apply warns of a tenant a file points at another shard: its rows do not follow', () => {
    // an outside check: a tenant of 3,302 members repointed with only the diff line printed
    put('shards/cb-s5', shard(3316));
    put('shards/cb-s6', shard(3326));
    put('tenants/cb-rp', TENANT('cb-s5'));
    const file = join(dir, 'repoint.yaml');
    writeFileSync(file, 'tenants:\n  cb-rp: {shard: cb-s6, status: active}\n');
    const r = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(
      'shardgate-ctl: config apply: warning: tenant cb-rp is pointed from shard cb-s5 to shard cb-s6: its rows stay on cb-s5, and on cb-s6 it answers as a new, empty library; `tenants move cb-rp --to cb-s6` copies them',
    );
    expect(r.stdout).toContain('dry run: 1 change(s) not applied');
    // applied: the rows left on cb-s5 are recorded, as for a removal (an outside review)
    const record = removalRecordKey(PREFIX, 'cb-rp', 'cb-s5');
    records.add(record);
    records.add(removalRecordKey(PREFIX, 'cb-rp', 'cb-s6'));
    const applied = ctl(['config', 'apply', '-f', file], env);
    expect(applied.code, applied.stderr).toBe(0);
    expect(JSON.parse(etcdGetKey(record)!)).toMatchObject({ rows: 'unchecked' });
    writeFileSync(file, 'tenants:\n  cb-rp: {shard: cb-s5, status: active}\n');
    expect(ctl(['config', 'apply', '-f', file, '--adopt-rows'], env).code).toBe(0);
    expect(etcdGetKey(record)).toBeUndefined();
    // a status change only: no warning
    writeFileSync(file, 'tenants:\n  cb-rp: {shard: cb-s5, status: readonly}\n');
    const status = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(status.code, status.stderr).toBe(0);
    expect(status.stderr).not.toContain('is pointed from');
  });

  it('config apply -f /dev/zero or /dev/urandom: refused in one line, exit 1, nothing read', () => {
    for (const device of ['/dev/zero', '/dev/urandom']) {
      const r = ctl(['config', 'apply', '-f', device, '--dry-run'], env);
      expect(r.code, `${device}: ${r.stderr}`).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(ONE_LINE);
      expect(r.stderr).toContain(`cannot read ${device}: not a regular file`);
    }
  });

  it('config apply warns of no rejected key for a tenant on a deleted shard the instances keep for it', () => {
    put('shards/cb-s1', shard(3998));
    put('tenants/cb-t1', TENANT('cb-s1'));
    etcdDelKey(`${PREFIX}shards/cb-s1`); // the instances keep it for cb-t1
    const list = ctl(['tenants', 'list', '--json'], env);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).not.toContain('problem');
    const file = join(dir, 't.yaml');
    writeFileSync(file, 'tenants:\n  cb-t1: {shard: cb-s1, status: active}\n');
    const r = ctl(['config', 'apply', '-f', file, '--dry-run', '--force'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('no changes\n');
    expect(r.stderr).not.toContain('stay rejected');
    expect(r.stderr).toBe('');
  });

  it('config export leaves out a nested unknown key and an unknown top-level key, naming them: export → apply is a no-op', () => {
    put('shards/cb-s2', shard(3316));
    put('tenants/cb-x', TENANT('cb-s2'));
    put('tenants/cb-x/sub', TENANT('cb-s2'));
    put('tenants/cb-y/sub', TENANT('cb-s2'));
    put('cb-topkey', 'x');
    const file = join(dir, 'e.yaml');
    const exported = ctl(['config', 'export', '-o', file], env);
    expect(exported.code, exported.stderr).toBe(0);
    // first the round trip: before, the file held tenant cb-x with a field `sub`, refused whole
    const applied = ctl(['config', 'apply', '-f', file, '--dry-run'], env);
    expect(applied.code, applied.stderr).toBe(0);
    expect(applied.stdout).toBe('no changes\n');
    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain('sub');
    expect(text).not.toContain('cb-y');
    expect(exported.stderr).toMatch(ONE_LINE);
    expect(exported.stderr).toContain('config export: warning: left out 3 key(s)');
    for (const key of ['cb-topkey', 'tenants/cb-x/sub', 'tenants/cb-y/sub'])
      expect(exported.stderr).toContain(`${PREFIX}${key}`);
  });
});
