/**
 * `shards remove` of a shard that has no tenant left but still has what removing it would strand
 * (control-plane/shard-leftovers.ts): an unfinished move's record, a removal record of rows left
 * there, mail its outbox has not delivered. Refused, one line naming each and the way out; with
 * --force removed, each named in a warning. Before, it went through silently (an outside check:
 * the mail went out only once the shard was added again, and the move could not be finished).
 *
 * A database of this test's own on shard-1's master, migrated, added as a shard; dropped and its
 * keys deleted at the end.
 */
import { randomBytes } from 'node:crypto';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { type Connection, createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findMigrationsFolder } from '../src/db/migrations-folder.js';
import { newId } from '../src/domain/ids.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdDelKey, etcdGet, etcdPut, etcdPutKey, PREFIX } from './helpers/etcd.js';
import { removeTenant, uniqueTenantId } from './helpers/tenants.js';

const suffix = randomBytes(3).toString('hex');
const shard = `left-${suffix}`;
const database = `left_${suffix}`;
const H = topology.host;
const masterPort = topology.shards[0]!.master.port;
const moved = uniqueTenantId('leftmove');
const removed = uniqueTenantId('leftrm');
const base = PREFIX.replace(/\/$/, '');
const moveKey = `${base}.moves/${moved}`;
const removalKey = `${base}.removed/${removed}/${shard}`;
let root: Connection;

beforeAll(async () => {
  root = await createConnection({ host: H, port: masterPort, user: 'root' });
  await root.query(`CREATE DATABASE \`${database}\``);
  for (const host of [H, 'localhost'])
    await root.query(`GRANT ALL ON \`${database}\`.* TO ?@?`, [topology.dbUser, host]);
  const db = await createConnection({ host: H, port: masterPort, user: 'root', database });
  try {
    await migrate(drizzle(db), { migrationsFolder: findMigrationsFolder()! });
  } finally {
    await db.end();
  }
  const added = ctl(
    ['shards', 'add', shard, '--master', `${H}:${masterPort}`, '--database', database],
    stackEnv(),
  );
  expect(added.code, added.stderr).toBe(0);
}, 60_000);

afterAll(async () => {
  etcdDelKey(moveKey);
  etcdDelKey(removalKey);
  etcdDel(`shards/${shard}`);
  await root?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await root?.end();
}, 30_000);

describe('shards remove of a shard that still has something to strand', () => {
  it('is refused naming each, and goes with --force, warning of each', async () => {
    // a mail due in an hour (a retry's backoff), a move interrupted after its switch, rows left by a removal
    await root.query(
      `INSERT INTO \`${database}\`.outbox (id, tenant_id, kind, recipient, payload, created_at, available_at)
       VALUES (?, ?, 'welcome', 'pending@example.com', '{}', NOW(3), NOW(3) + INTERVAL 1 HOUR)`,
      [newId(), moved],
    );
    etcdPutKey(
      moveKey,
      JSON.stringify({
        from: shard,
        to: 'shard-2',
        status: 'active',
        keepSource: false,
        startedAt: new Date().toISOString(),
      }),
    );
    etcdPutKey(removalKey, JSON.stringify({ removedAt: new Date().toISOString(), rows: 'present' }));

    const refused = ctl(['shards', 'remove', shard], stackEnv());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `shardgate-ctl: shards remove: shard ${shard} still has what removing it would strand: the move of tenant ${moved} from shard ${shard} to shard-2 is not finished: run \`tenants move ${moved} --to shard-2\` to finish it first; rows of removed tenant ${removed} may be left there: \`tenants delete-rows ${removed} --shard ${shard} --yes\` deletes them and its record; its outbox holds 1 mail(s) not delivered yet: the email worker sends them only while the shard is configured; re-run once it has; nothing written (--force removes it all the same) (see shardgate-ctl shards remove --help)\n`,
    );
    expect(etcdGet(`shards/${shard}`)).toBeDefined();

    const forced = ctl(['shards', 'remove', shard, '--force'], stackEnv());
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(
      new RegExp(
        `^shardgate-ctl: shards remove: warning: the move of tenant ${moved} .*; removing it anyway \\(--force\\)\\n$`,
      ),
    );
    expect(etcdGet(`shards/${shard}`)).toBeUndefined();
  }, 60_000);

  it("a tenant whose shard's key was deleted by hand: tenants move names the key and the way back", () => {
    const gone = `gone-${suffix}`;
    const tenant = uniqueTenantId('leftgone');
    const added = ctl(
      ['shards', 'add', gone, '--master', `${H}:${masterPort}`, '--database', database],
      stackEnv(),
    );
    expect(added.code, added.stderr).toBe(0);
    const saved = etcdGet(`shards/${gone}`)!;
    try {
      expect(ctl(['tenants', 'create', tenant, '--shard', gone], stackEnv()).code).toBe(0);
      etcdDel(`shards/${gone}`);
      const moved = ctl(['tenants', 'move', tenant, '--to', 'shard-2'], stackEnv());
      expect(moved.code).toBe(1);
      expect(moved.stderr).toContain(
        `tenant ${tenant} has an entry the API instances reject (unknown shard "${gone}"): its shard's key shards/${gone} is gone (the instances keep serving the tenant from their last good value); put it back with \`shards add ${gone} --master …\``,
      );
    } finally {
      etcdPut(`shards/${gone}`, saved);
      removeTenant(tenant);
      ctl(['shards', 'remove', gone, '--force'], stackEnv());
      etcdDel(`shards/${gone}`);
    }
  }, 60_000);
});
