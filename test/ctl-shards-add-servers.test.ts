/**
 * `shards add` asks its servers what `set-master` and `add-replica` ask (an outside check: a
 * read-only replica was written as a new shard's master, and another shard's replica as its
 * replica, exit 0 and not a word; the instances then failed every write there, and excluded the
 * replica as ahead of its master). Against the local stack's servers, with the database password.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { migrationCount } from '../src/db/migrations-folder.js';
import { stackEnv } from '../stack/stack-env.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet } from './helpers/etcd.js';
import { runMigrate } from './helpers/migrate.js';
import { node } from './helpers/shard-db.js';

const ids: string[] = [];
const newId = () => {
  const id = `add-srv-${randomBytes(3).toString('hex')}`;
  ids.push(id);
  return id;
};
afterAll(() => {
  for (const id of ids) etcdDel(`shards/${id}`);
});

describe('shards add, asking its servers', () => {
  it("refuses a master that cannot take the shard's writes (a replica), unless --force", () => {
    const replica = node('shard-1', 'replica');
    const id = newId();
    const refused = ctl(['shards', 'add', id, '--master', `127.0.0.1:${replica.port}`], stackEnv());
    expect(refused.code).toBe(1);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toContain(`master 127.0.0.1:${replica.port} cannot take the shard's writes`);
    expect(refused.stderr).toContain('read-only');
    expect(refused.stderr).toContain('nothing written');
    expect(etcdGet(`shards/${id}`)).toBeUndefined();
    const forced = ctl(['shards', 'add', id, '--master', `127.0.0.1:${replica.port}`, '--force'], stackEnv());
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toContain(`shards add: warning: master 127.0.0.1:${replica.port}: `);
    expect(forced.stderr).toContain('writing it anyway (--force)');
    expect(etcdGet(`shards/${id}`)).toBeDefined();
    // migrate there: nothing to apply on the read-only server, said so (before: drizzle's CREATE
    // TABLE IF NOT EXISTS failed "running with the --read-only option", exit 1)
    const migrated = runMigrate(['--shard', id]);
    expect(migrated.stderr).toBe('');
    expect(migrated.stdout).toContain(
      `shard ${id} (127.0.0.1:${replica.port}/shardgate): 0 applied, ${migrationCount()} in total (a read-only server)\n`,
    );
  });

  it("warns of a replica that does not replicate from the master (another shard's), and writes", () => {
    const master = node('shard-1', 'master');
    const stranger = node('shard-2', 'replica');
    const id = newId();
    const added = ctl(
      [
        'shards',
        'add',
        id,
        '--master',
        `127.0.0.1:${master.port}`,
        '--replica',
        `127.0.0.1:${stranger.port}`,
      ],
      stackEnv(),
    );
    expect(added.code, added.stderr).toBe(0);
    expect(added.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: shards add: warning: .*127\\.0\\.0\\.1:${stranger.port}.*: it will not be read from until it is re-seeded from the master$`,
        'm',
      ),
    );
    expect(etcdGet(`shards/${id}`)).toBeDefined();
  });
});
