/**
 * Issue "Foundation": the local stack runner against its real processes.
 * - a row written on each shard master shows up on that shard's replica within seconds (GTID
 *   replication) and on no node of the other shard; masters are durable; every node runs on
 *   MariaDB's thread pool; replicas are read-only, follow their master
 *   by GTID (slave_pos) and never write a GTID of their own;
 * - the application user has the privileges the lag probes need (SHOW SLAVE STATUS,
 *   MASTER_GTID_WAIT) and nothing beyond its database;
 * - the SMTP sink writes each message as one .eml, and refuses one over 1 MiB;
 * - a second `up` changes nothing and says so; `status --json` lists every process healthy;
 *   a SIGSTOPped process makes `status` exit 1 and the next `up` continues it.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createConnection } from 'mysql2/promise';
import { createTransport } from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { threadPoolGroups } from '../stack/mariadb.js';
import { MAIL_DIR, REPO_ROOT, SECRETS_FILE, STATE_DIR } from '../stack/paths.js';
import { dbPassword, replicationPassword } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { DB_NODES, rootQuery } from './helpers/shard-db.js';
import { stackCli, stackPid, waitFor } from './helpers/stack.js';

interface Row {
  name: string;
  state: string;
  healthy: boolean;
  pid?: number;
}

function status(): { code: number; rows: Row[] } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', 'status', '--json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  return { code: r.status ?? -1, rows: JSON.parse(r.stdout) as Row[] };
}

describe('local stack: MariaDB shards', () => {
  it('replicates a row from each master to its own replica and to no node of another shard', async () => {
    const marker = randomBytes(6).toString('hex');
    for (const shard of topology.shards) {
      await rootQuery(
        shard.master.port,
        'CREATE TABLE IF NOT EXISTS stack_probe (id VARCHAR(40) PRIMARY KEY, shard VARCHAR(64) NOT NULL)',
      );
      await rootQuery(shard.master.port, 'INSERT INTO stack_probe (id, shard) VALUES (?, ?)', [
        `${marker}-${shard.id}`,
        shard.id,
      ]);
    }
    const probeIds = async (port: number) =>
      (
        await rootQuery<{ id: string }>(port, 'SELECT id FROM stack_probe WHERE id LIKE ?', [`${marker}-%`])
      ).map((r) => r.id);
    for (const node of DB_NODES) {
      // the table itself replicates too: wait for this node to have our shard's row
      const ids = await waitFor(
        async () => {
          const found = await probeIds(node.port);
          return found.length > 0 ? found : undefined;
        },
        { timeoutMs: 5000, what: `${node.name} to have the probe row` },
      );
      expect(ids, node.name).toEqual([`${marker}-${node.shard}`]);
    }
  });

  it('runs every master durable, and every node on the thread pool with minimal row images', async () => {
    for (const node of DB_NODES) {
      const [v] = await rootQuery<Record<string, unknown>>(
        node.port,
        'SELECT @@innodb_flush_log_at_trx_commit AS flush, @@sync_binlog AS sync, ' +
          '@@thread_handling AS threads, @@thread_pool_size AS groups, @@binlog_row_image AS image',
      );
      expect(v, node.name).toMatchObject({
        threads: 'pool-of-threads',
        groups: threadPoolGroups(),
        image: 'MINIMAL',
      });
      if (node.role === 'master') expect(v, node.name).toMatchObject({ flush: 1, sync: 1 });
    }
  });

  it('runs every replica read-only, following its master by GTID, with no GTID of its own', async () => {
    for (const shard of topology.shards) {
      for (const replica of shard.replicas) {
        const [v] = await rootQuery<{ ro: number; pos: string }>(
          replica.port,
          'SELECT @@read_only AS ro, @@gtid_binlog_pos AS pos',
        );
        expect(v?.ro).toBe(1);
        // every GTID in the replica's binlog came from its master's server id
        for (const gtid of (v?.pos ?? '').split(',').filter(Boolean)) {
          expect(gtid.split('-')[1], `${replica.name} ${gtid}`).toBe(String(shard.master.serverId));
        }
        const [st] = await rootQuery<Record<string, unknown>>(replica.port, 'SHOW SLAVE STATUS');
        expect(st).toMatchObject({
          Master_Port: shard.master.port,
          Using_Gtid: 'Slave_Pos',
          Slave_IO_Running: 'Yes',
          Slave_SQL_Running: 'Yes',
        });
      }
    }
  });

  it('gives the application user its database and the replication probes, nothing more', async () => {
    const [shard] = topology.shards;
    const conn = await createConnection({
      host: topology.host,
      port: shard!.replicas[0]!.port,
      user: topology.dbUser,
      password: dbPassword(),
      database: topology.database,
    });
    try {
      const [status] = await conn.query('SHOW SLAVE STATUS');
      expect((status as unknown[]).length).toBe(1);
      const [[wait]] = (await conn.query("SELECT MASTER_GTID_WAIT('', 1) AS w")) as unknown as [
        [{ w: number }],
      ];
      expect(wait.w).toBe(0);
      await expect(conn.query('SELECT * FROM mysql.user')).rejects.toThrow(/denied/);
    } finally {
      await conn.end();
    }
  });

  it('gives the replication user a password of its own, kept out of git in .stack/secrets.env', async () => {
    const [shard] = topology.shards;
    const login = (user: string, password: string) =>
      createConnection({ host: topology.host, port: shard!.master.port, user, password }).then((c) =>
        c.end(),
      );
    // the value it had when it was written in the repository
    await expect(login('repl', 'repl-local-stack')).rejects.toThrow(/denied/);
    await login('repl', replicationPassword());
    expect(readFileSync(SECRETS_FILE, 'utf8')).toContain(`STACK_REPL_PASSWORD=${replicationPassword()}\n`);
    // and every replica holds it (its next reconnect uses it) and replicates
    for (const replica of topology.shards.flatMap((s) => s.replicas)) {
      const masterInfo = readFileSync(join(STATE_DIR, replica.name, 'data', 'master.info'), 'utf8');
      expect(masterInfo.split('\n'), replica.name).toContain(replicationPassword());
      const [row] = await rootQuery(replica.port, 'SHOW SLAVE STATUS');
      expect(row).toMatchObject({ Slave_IO_Running: 'Yes', Slave_SQL_Running: 'Yes' });
    }
  });
});

describe('local stack: SMTP sink', () => {
  const smtp = createTransport({
    host: topology.host,
    port: topology.smtp.port,
    secure: false,
    ignoreTLS: true,
  });
  const eml = () => new Set(readdirSync(MAIL_DIR).filter((f) => f.endsWith('.eml')));

  it('writes each accepted message as one .eml file, never a partial one', async () => {
    const before = eml();
    const subject = `probe ${randomBytes(6).toString('hex')}`;
    await smtp.sendMail({ from: 'probe@shardgate.local', to: 'sink@example.com', subject, text: 'hello' });
    // only this message's files: the directory is shared, and the worker may deliver others meanwhile
    const ours = () =>
      [...eml()].filter(
        (f) => !before.has(f) && readFileSync(join(MAIL_DIR, f), 'utf8').includes(`Subject: ${subject}`),
      );
    const added = await waitFor(() => {
      const now = ours();
      return now.length > 0 ? now : undefined;
    }, 5000);
    expect(added).toHaveLength(1);
    expect(added[0]).toMatch(/^\d+-[0-9a-f]+\.eml$/);
    expect(readdirSync(MAIL_DIR).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('refuses a message over 1 MiB and writes nothing', async () => {
    const before = eml();
    const subject = `oversized ${randomBytes(6).toString('hex')}`;
    await expect(
      smtp.sendMail({
        from: 'probe@shardgate.local',
        to: 'sink@example.com',
        subject,
        text: 'x'.repeat(1_100_000),
      }),
    ).rejects.toThrow(/552|size|exceed/i);
    const written = [...eml()].filter(
      (f) => !before.has(f) && readFileSync(join(MAIL_DIR, f), 'utf8').includes(`Subject: ${subject}`),
    );
    expect(written).toEqual([]);
  });
});

describe('local stack: runner', () => {
  it('a second up changes nothing and says so; status lists every process running and healthy', () => {
    expect(stackCli(['up'])).toMatch(/stack already up: \d+ processes running and healthy; nothing changed/);
    const { code, rows } = status();
    const expected = [
      topology.etcd.name,
      topology.redis.name,
      topology.rabbitmq.name,
      topology.smtp.name,
      topology.haproxy.name,
      topology.worker.name,
      topology.lbSync.name,
      ...topology.apis.map((a) => a.id),
      ...DB_NODES.map((n) => n.name),
    ];
    expect(rows.map((r) => r.name).sort()).toEqual([...expected].sort());
    for (const name of expected) {
      expect(
        rows.find((r) => r.name === name),
        name,
      ).toMatchObject({ state: 'running', healthy: true, pid: stackPid(name) });
    }
    expect(code).toBe(0);
  });

  it('status exits 1 while a process is SIGSTOPped; up continues it', async () => {
    const pid = stackPid(topology.smtp.name)!;
    process.kill(pid, 'SIGSTOP');
    try {
      const { code, rows } = status();
      expect(code).toBe(1);
      expect(rows.find((r) => r.name === topology.smtp.name)).toMatchObject({
        state: 'stopped',
        healthy: false,
      });
      expect(stackCli(['up'])).toContain(`continued SIGSTOPped: ${topology.smtp.name}`);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    expect(stackPid(topology.smtp.name)).toBe(pid);
    expect(status().code).toBe(0);
  });
});
