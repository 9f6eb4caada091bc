/**
 * A shard whose database has no tables (added, never migrated): `shards add` says to migrate it,
 * `tenants create` refuses it naming the command, and a tenant placed there anyway (its entry
 * written by hand) gets 503 `dependency_unavailable` with the fix in the instance's log, not a
 * 500; once `npm run migrate -- --shard <id>` has run, its requests are served.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_DIR } from '../stack/paths.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdGetKey, etcdPut, PREFIX } from './helpers/etcd.js';
import { runMigrate } from './helpers/migrate.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const suffix = randomBytes(3).toString('hex');
const shard = `nm-${suffix}`;
const database = `nomig_${suffix}`;
const tenant = uniqueTenantId('nomig');
const master = node('shard-1', 'master');
const replica = node('shard-1', 'replica');
const H = topology.host;
const APP_HOSTS = [H, 'localhost'];

const register = (email: string) =>
  api('POST', '/v1/members', { tenant, body: { email, name: 'Nomig', password: 'correct horse battery' } });

describe('a shard whose database was never migrated', () => {
  beforeAll(async () => {
    await rootQuery(master.port, `CREATE DATABASE \`${database}\``);
    for (const host of APP_HOSTS)
      await rootQuery(master.port, `GRANT ALL ON \`${database}\`.* TO ?@?`, [topology.dbUser, host]);
    await waitFor(
      async () => (await rootQuery(replica.port, 'SHOW DATABASES LIKE ?', [database])).length === 1,
      {
        timeoutMs: 10_000,
        what: `${database} on the replica`,
      },
    );
  }, 30_000);
  afterAll(async () => {
    etcdDel(`tenants/${tenant}`);
    etcdDel(`shards/${shard}`);
    for (const host of APP_HOSTS)
      await rootQuery(master.port, `REVOKE ALL ON \`${database}\`.* FROM ?@?`, [topology.dbUser, host]).catch(
        () => {},
      );
    await rootQuery(master.port, `DROP DATABASE IF EXISTS \`${database}\``);
  }, 30_000);

  it('shards add says to migrate it; tenants create refuses it, naming the command', () => {
    // the replica gets the empty database by replication, as a new shard's would
    const servers = ['--master', `${H}:${master.port}`, '--replica', `${H}:${replica.port}`];
    const added = ctl(['shards', 'add', shard, ...servers, '--database', database], stackEnv());
    expect(added.stderr).toBe('');
    expect(added.code).toBe(0);
    expect(added.stdout).toContain(
      `next: put the schema on it with \`npm run migrate -- --shard ${shard}\` before a tenant is created there\n`,
    );
    const created = ctl(['tenants', 'create', tenant, '--shard', shard], stackEnv());
    expect(created.code).toBe(1);
    expect(created.stderr).toBe(
      `shardgate-ctl: tenants create: shard ${shard} has no schema (Table '${database}.members' doesn't exist): put it there first with \`npm run migrate -- --shard ${shard}\`; nothing written (see shardgate-ctl tenants create --help)\n`,
    );
    expect(etcdGet(`tenants/${tenant}`)).toBeUndefined();
    // nor can a tenant move there: one line, nothing changed (before, a stack trace)
    const mover = uniqueTenantId('nomig-mv');
    expect(ctl(['tenants', 'create', mover, '--shard', 'shard-1'], stackEnv()).code).toBe(0);
    try {
      const moved = ctl(['tenants', 'move', mover, '--to', shard], stackEnv());
      expect(moved.code).toBe(1);
      expect(moved.stderr.trim().split('\n')).toHaveLength(1);
      expect(moved.stderr).toMatch(
        new RegExp(
          `^shardgate-ctl: .*shard ${shard} has no schema: bring it up to date first with \`npm run migrate -- --shard ${shard}\`; nothing changed`,
        ),
      );
      expect(JSON.parse(etcdGet(`tenants/${mover}`)!)).toEqual({ shard: 'shard-1', status: 'active' });
    } finally {
      removeTenant(mover);
    }
  }, 60_000);

  it('a tenant placed there anyway gets 503 dependency_unavailable, the log naming the fix; after migrate, 201', async () => {
    etcdPut(`tenants/${tenant}`, JSON.stringify({ shard, status: 'active' }));
    await waitFor(
      async () =>
        (await Promise.all(INSTANCES.map((base) => api('GET', '/v1/books', { tenant, base })))).every(
          (a) => a.status !== 404,
        ),
      { timeoutMs: 5000, what: `tenant ${tenant} on every instance` },
    );
    const replicaStates = async () =>
      Promise.all(
        INSTANCES.map(async (base) => {
          const replication = await api('GET', '/health/replication', { base });
          const own = replication.json.shards.find((sh: { id: string }) => sh.id === shard);
          return own?.replicas.map((r: { state: string }) => r.state).join(',');
        }),
      );
    await waitFor(async () => (await replicaStates()).every((s) => s === 'admitted'), {
      timeoutMs: 10_000,
      what: `the replica of ${shard} admitted`,
    });
    for (const base of INSTANCES) {
      const write = await api('POST', '/v1/members', {
        tenant,
        base,
        body: { email: 'a@example.com', name: 'A', password: 'correct horse battery' },
      });
      expect([write.status, write.json?.code, write.json?.detail]).toEqual([
        503,
        'dependency_unavailable',
        expect.stringMatching(new RegExp(`^mysql-master:${shard} is unavailable`)),
      ]);
      expect(write.headers.get('Content-Type')).toBe('application/problem+json');
      const read = await api('GET', '/v1/books', { tenant, base });
      expect([read.status, read.json?.code]).toEqual([503, 'dependency_unavailable']);
    }
    // the reason is in the log, never in an answer
    const log = readFileSync(join(LOG_DIR, `${topology.apis[0]!.id}.log`), 'utf8');
    const line = log.split('\n').find((l) => l.includes(`"dependency":"mysql-master:${shard}"`));
    expect(line).toContain(
      `doesn't exist: the shard's schema is missing or older than this build's migrations (run: npm run migrate -- --shard ${shard})`,
    );
    // an answer of the node, not its failure: the replica stays admitted (before, every read
    // excluded it) and the master's breaker counts no failure
    expect(await replicaStates()).toEqual(INSTANCES.map(() => 'admitted'));
    for (const base of INSTANCES) {
      const breakers = await api('GET', '/health/circuit-breakers', { base });
      const own = breakers.json.breakers.find((b: { name: string }) => b.name === `mysql-master:${shard}`);
      expect([own?.state, own?.failures]).toEqual(['closed', 0]);
    }

    // taken off there: its removal record (rows unchecked) goes with a delete-rows that finds no
    // schema, so no rows (before: "Table … doesn't exist", and only etcdctl could clear it)
    const removed = ctl(['tenants', 'remove', tenant, '--yes'], stackEnv());
    expect(removed.code, removed.stderr).toBe(0);
    const record = `${PREFIX.replace(/\/$/, '')}.removed/${tenant}/${shard}`;
    expect(etcdGetKey(record)).toBeDefined();
    const freed = ctl(['tenants', 'delete-rows', tenant, '--shard', shard, '--yes'], stackEnv());
    expect(freed.stderr).toBe('');
    expect(freed.stdout).toBe(
      `shard ${shard}: its database has no schema (never migrated), so no rows of tenant ${tenant}; the id is free there\n`,
    );
    expect(etcdGetKey(record)).toBeUndefined();
    etcdPut(`tenants/${tenant}`, JSON.stringify({ shard, status: 'active' }));
    const migrated = runMigrate(['--shard', shard]);
    expect(migrated.stderr).toBe('');
    expect(migrated.stdout).toMatch(new RegExp(`^shard ${shard} \\(.+\\): [1-9]\\d* applied`, 'm'));
    expect((await register('after@example.com')).status).toBe(201);
  }, 60_000);
});
