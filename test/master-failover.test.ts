/**
 * A shard master dies; the operator promotes its replica and points the shard at it
 * (docs/operations.md, "When a master dies"). On a shard of this test's own — a MariaDB master
 * and GTID replica it starts beside the stack, registered with `shardgate-ctl shards add` — so the
 * stack's shards are never touched:
 * - the master SIGKILLed: writes of its tenant answer 503, reads keep coming from the replica;
 * - the replica promoted as a DBA does it (STOP SLAVE, RESET SLAVE ALL, read_only off), then
 *   `shardgate-ctl shards set-master <shard> <replica>`: the address leaves the replica list in
 *   the same etcd write, and writes succeed again within 2 s (CONTRACT.md §4), through HAProxy;
 * - everything written before the kill is there, and a member logs in and borrows as before.
 * Everything made here is removed at the end: the tenant and shard keys (single-key deletes), the
 * two processes, their datadirs and pid files.
 */

import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import {
  initDatadir,
  nodeDir,
  setupMaster,
  setupReplica,
  sql,
  startMariaDb,
  waitForMariaDb,
} from '../stack/mariadb.js';
import { pidFile, stopProcess } from '../stack/process-manager.js';
import { dbPassword } from '../stack/stack-env.js';
import { type MariaDbNode, topology } from '../stack/topology.js';
import { api, HAPROXY, registerAndLogin } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdOverride } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { runMigrate } from './helpers/migrate.js';
import { rootConnection } from './helpers/shard-db.js';
import { waitFor } from './helpers/wait-for.js';

const H = topology.host;
const suffix = randomBytes(3).toString('hex');
const shard = `ft-${suffix}`;
const tenant = `t-failover-${suffix}`;
let master: MariaDbNode;
let replica: MariaDbNode;
let masterPid = 0;
let restoreMaxLag: (() => void) | undefined;
/**
 * The test holds the replica's SQL thread on purpose (below), so the replica lags from the held
 * write on. With the default 5 s limit a slow box excluded it before the read after the kill (one
 * CI run: that read answered 503, routed to the dead master). Reads from a replica past the limit
 * are read-your-writes.test's subject; here the limit is out of the way.
 */
const MAX_LAG_SECONDS = 3600;

const book = (title: string) => ({ isbn: '9780306406157', title, author: 'Failover', copies: 2 });

beforeAll(async () => {
  master = { name: `ft-master-${suffix}`, port: await freePort(H), serverId: 9100 };
  replica = { name: `ft-replica-${suffix}`, port: await freePort(H), serverId: 9101 };
  await Promise.all([initDatadir(master), initDatadir(replica)]);
  masterPid = startMariaDb(master, { replica: false });
  startMariaDb(replica, { replica: true });
  await Promise.all([waitForMariaDb(master), waitForMariaDb(replica)]);
  await setupMaster(master, dbPassword());
  await setupReplica(replica, master);
  const added = ctl([
    'shards',
    'add',
    shard,
    '--master',
    `${H}:${master.port}`,
    '--replica',
    `${H}:${replica.port}`,
  ]);
  if (added.code !== 0) throw new Error(`shards add: ${added.stderr}`);
  // the schema, as on every shard (`npm run migrate -- --shard <id>`: this one only, whatever else
  // is in etcd)
  const migrated = runMigrate(['--shard', shard]);
  if (migrated.code !== 0) throw new Error(`migrate: ${migrated.stderr}`);
  const created = ctl(['tenants', 'create', tenant, '--shard', shard]);
  if (created.code !== 0) throw new Error(`tenants create: ${created.stderr}`);
  restoreMaxLag = etcdOverride('replication/max_lag_seconds', String(MAX_LAG_SECONDS));
  await configInForce(
    (a) => a.replication.maxLagSeconds === MAX_LAG_SECONDS,
    `replication/max_lag_seconds ${MAX_LAG_SECONDS}`,
  );
}, 180_000);

afterAll(async () => {
  restoreMaxLag?.();
  if (etcdGet(`tenants/${tenant}`) !== undefined) etcdDel(`tenants/${tenant}`);
  if (etcdGet(`shards/${shard}`) !== undefined) etcdDel(`shards/${shard}`);
  for (const node of [master, replica]) {
    if (!node) continue;
    await stopProcess(node.name, { graceMs: 5000 }).catch(() => {});
    rmSync(nodeDir(node), { recursive: true, force: true });
    rmSync(pidFile(node.name), { force: true });
  }
});

/** whether the GTID list `have` holds, in each domain of `want`, at least its sequence number */
function gtidCovers(have: string, want: string): boolean {
  const seqs = (list: string) =>
    new Map(
      list
        .split(',')
        .map((g) => g.trim().split('-'))
        .filter((p) => p.length === 3)
        .map(([domain, , seq]) => [domain!, Number(seq)] as const),
    );
  const got = seqs(have);
  return [...seqs(want)].every(([domain, seq]) => (got.get(domain) ?? -1) >= seq);
}

/** the master's GTID position, applied on the replica (or a timeout) */
async function replicaCaughtUp(): Promise<void> {
  const position = (await sql(master, 'SELECT @@gtid_binlog_pos')).trim();
  const waited = (await sql(replica, `SELECT MASTER_GTID_WAIT('${position}', 10)`)).trim();
  expect(waited).toBe('0');
}

describe('a shard master dies', () => {
  it('the replica is promoted and set as master: writes come back within 2 s, nothing written before is lost', async () => {
    const lib = await registerAndLogin(tenant, `lib-${suffix}@example.com`);
    const reader = await registerAndLogin(tenant, `reader-${suffix}@example.com`);
    const before = await api('POST', '/v1/books', {
      tenant,
      token: lib.token,
      body: book('before the kill'),
    });
    expect(before.status).toBe(201);
    await replicaCaughtUp();
    // the replica receives the next write but has not applied it when the master dies (its SQL
    // thread waits for a lock a transaction on it holds where the tenant's books go): RESET SLAVE
    // ALL would delete it with the relay log
    // (a table of its own: a write of the tenant would make its reads wait for the replica)
    await sql(master, `CREATE TABLE ${topology.database}.failover_marker (id INT PRIMARY KEY)`);
    await replicaCaughtUp();
    const hold = await rootConnection(replica.port);
    await hold.query('START TRANSACTION');
    await hold.query('SELECT id FROM failover_marker FOR UPDATE');
    await sql(master, `INSERT INTO ${topology.database}.failover_marker VALUES (1)`);
    const masterAt = (await sql(master, 'SELECT @@gtid_binlog_pos')).trim();
    // and the master goes on, as it may by itself (the email worker marks outbox rows sent there)
    await sql(master, `INSERT INTO ${topology.database}.failover_marker VALUES (2)`);
    const received = async () => {
      const [names = '', values = ''] = (await sql(replica, 'SHOW SLAVE STATUS', { names: true })).split(
        '\n',
      );
      return values.split('\t')[names.split('\t').indexOf('Gtid_IO_Pos')];
    };
    // at least the master's position received: the master may have gone on meanwhile (the email
    // worker marks outbox rows sent there; in one CI run the replica held 0-9100-41 while it was
    // awaited at 0-9100-40 exactly, and the test timed out)
    let lastReceived: string | undefined;
    await waitFor(
      async () => {
        lastReceived = await received();
        return gtidCovers(lastReceived ?? '', masterAt);
      },
      { timeoutMs: 20_000, what: `the replica to receive ${masterAt}` },
    ).catch((error: Error) => {
      throw new Error(`${error.message}; its Gtid_IO_Pos: ${JSON.stringify(lastReceived)}`);
    });

    process.kill(masterPid, 'SIGKILL');
    await waitFor(
      async () =>
        (await api('POST', '/v1/books', { tenant, token: lib.token, body: book('x') })).status === 503,
      { timeoutMs: 10_000, intervalMs: 200, what: 'writes to the dead master answering 503' },
    );
    // reads go on from the replica
    const listed = await api('GET', '/v1/books?limit=10', { tenant });
    expect(listed.status).toBe(200);
    expect(listed.json.items.map((b: { id: string }) => b.id)).toContain(before.json.id);

    // the operator's part first, by mistake: the replica is still read-only and still tries to
    // follow the dead master. Refused, naming both, and nothing written (before: "promoted",
    // exit 0, and every write answered 503 until someone found out why; an outside check)
    // what the replica received before the master died: the marker, and what the master wrote
    // after it, if anything
    const receivedAll = (await received()) ?? '';
    expect(gtidCovers(receivedAll, masterAt), receivedAll).toBe(true);
    const ENV = { SHARDGATE_DB_PASSWORD: dbPassword() };
    const early = ctl(['shards', 'set-master', shard, `${H}:${replica.port}`], ENV);
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`master ${H}:${replica.port} cannot take the shard's writes`);
    expect(early.stderr).toContain('read-only');
    expect(early.stderr).toMatch(/still replicates from 127\.0\.0\.1:\d+ \(Slave_IO_Running: Connecting/);
    expect(early.stderr).toContain('nothing written');
    expect(JSON.parse(etcdGet(`shards/${shard}`)!).master.port).toBe(master.port);
    expect(early.stderr).toContain(`received transactions it has not applied (Gtid_IO_Pos ${receivedAll}`);

    // the DBA's part (docs/operations.md): stop receiving, apply what was received, stop
    // following the dead master, take writes
    await sql(replica, 'STOP SLAVE IO_THREAD;');
    await hold.query('ROLLBACK');
    await hold.end();
    expect((await sql(replica, `SELECT MASTER_GTID_WAIT('${receivedAll}', 15)`)).trim()).toBe('0');
    await sql(replica, 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = 0;');
    // the operator's part
    const promoted = ctl(['shards', 'set-master', shard, `${H}:${replica.port}`], ENV);
    expect(promoted.stderr).toBe('');
    expect(promoted.code).toBe(0);
    const entry = JSON.parse(etcdGet(`shards/${shard}`)!) as {
      master: { port: number };
      replicas: { port: number }[];
    };
    expect(entry.master.port).toBe(replica.port);
    expect(entry.replicas.map((r) => r.port)).toEqual([]);

    const t0 = Date.now();
    let after: Awaited<ReturnType<typeof api>> | undefined;
    await waitFor(
      async () => {
        after = await api('POST', '/v1/books', {
          tenant,
          token: lib.token,
          body: book('after the promotion'),
        });
        return after.status === 201;
      },
      { timeoutMs: 2000, intervalMs: 50, what: 'a write to the promoted master through HAProxy' },
    );
    console.log(`writes back ${Date.now() - t0} ms after shards set-master`);
    expect(after?.headers.get('X-Shard')).toBe(shard);

    // nothing written before the kill is lost (the write only received, too); members, tokens
    // and loans work as before
    const again = await api('GET', `/v1/books/${before.json.id}`, { tenant });
    expect([again.status, again.json.title]).toEqual([200, 'before the kill']);
    expect((await sql(replica, `SELECT id FROM ${topology.database}.failover_marker`)).trim()).toBe('1\n2');
    const login = await api('POST', '/v1/auth/login', {
      tenant,
      base: HAPROXY,
      body: { email: `reader-${suffix}@example.com`, password: 'correct horse battery' },
    });
    expect(login.status).toBe(200);
    const loan = await api('POST', '/v1/loans', {
      tenant,
      token: reader.token,
      body: { bookId: before.json.id },
    });
    expect(loan.status).toBe(201);
  });
});
