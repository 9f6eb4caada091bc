/**
 * Issue "Foundation", Done-when 1 (first half): with the stack up, a row written on each shard
 * master is readable on that shard's replica (GTID replication) and on no other shard; a second
 * `stack up` changes nothing; `stack status --json` reports every process running and healthy.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { topology } from '../stack/topology.js';
import { rootQuery } from './helpers/shard-db.js';
import { waitFor } from './helpers/wait-for.js';

function stackCli(args: string[]): string {
  return execFileSync(process.execPath, ['--import', 'tsx', 'stack/cli.ts', ...args], { encoding: 'utf8' });
}

describe('local stack', () => {
  it('replicates a row from each master to its own replica and to no other shard', async () => {
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
    for (const shard of topology.shards) {
      for (const replica of shard.replicas) {
        const rows = await waitFor(
          async () => {
            const r = await rootQuery<{ id: string }>(
              replica.port,
              'SELECT id FROM stack_probe WHERE id LIKE ?',
              [`${marker}-%`],
            );
            return r.length > 0 ? r : undefined;
          },
          { timeoutMs: 5000, what: `${replica.name} to apply the probe row` },
        );
        expect(rows.map((r) => r.id)).toEqual([`${marker}-${shard.id}`]);
      }
      const onMaster = await rootQuery<{ id: string }>(
        shard.master.port,
        'SELECT id FROM stack_probe WHERE id LIKE ?',
        [`${marker}-%`],
      );
      expect(onMaster.map((r) => r.id)).toEqual([`${marker}-${shard.id}`]);
    }
  });

  it('runs every replica read-only with GTID replication from its master', async () => {
    for (const shard of topology.shards) {
      for (const replica of shard.replicas) {
        const [ro] = await rootQuery<{ ro: number }>(replica.port, 'SELECT @@read_only AS ro');
        expect(ro?.ro).toBe(1);
        const [st] = await rootQuery<Record<string, unknown>>(replica.port, 'SHOW SLAVE STATUS');
        expect(st).toMatchObject({ Master_Port: shard.master.port, Using_Gtid: 'Slave_Pos' });
      }
    }
  });

  it('a second up changes nothing and says so; status lists every process healthy', () => {
    expect(stackCli(['up'])).toMatch(/stack already up: \d+ processes running and healthy; nothing changed/);
    const rows = JSON.parse(stackCli(['status', '--json'])) as {
      name: string;
      state: string;
      healthy: boolean;
      pid?: number;
    }[];
    const required = [
      topology.etcd.name,
      topology.redis.name,
      topology.rabbitmq.name,
      topology.smtp.name,
      topology.haproxy.name,
      topology.lbSync.name,
      ...topology.apis.map((a) => a.id),
      ...topology.shards.flatMap((s) => [s.master.name, ...s.replicas.map((r) => r.name)]),
    ];
    for (const name of required) {
      expect(
        rows.find((r) => r.name === name),
        name,
      ).toMatchObject({ state: 'running', healthy: true });
    }
  });
});
