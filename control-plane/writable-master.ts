/**
 * Whether a server can be made a shard's master (`shards set-master`), asked of the server
 * itself over the application's credentials before etcd is written: a server that refuses
 * writes or still follows another master would turn every write of the shard's tenants into a
 * 503 that never clears on its own (an outside check promoted a replica still `read_only` and
 * still trying to reach the dead master: the CLI said "promoted", exit 0, and nothing showed why
 * writes kept failing).
 *
 * Problems (each refuses the write unless `--force`):
 * - `@@read_only` is on;
 * - its replication threads run (`Yes` or `Connecting`): it still follows a master;
 * - MariaDB: it has received transactions it has not applied (`Gtid_IO_Pos` ahead of
 *   `@@gtid_slave_pos`), which `RESET SLAVE ALL` would discard.
 * Warnings (the write goes on): its replication is configured but stopped (a restart or a
 * `START SLAVE` would make it follow the old master again); replication could not be read (the
 * account lacks SLAVE MONITOR / REPLICATION CLIENT).
 */
import type { Connection, RowDataPacket } from 'mysql2/promise';
import { defaultReplicationStatusSql, flavourOfVersion } from '../src/db/flavour-sql.js';

export interface MasterCheck {
  problems: string[];
  warnings: string[];
}

/** "Access denied; you need (at least one of) the … privilege(s)" */
const ER_SPECIFIC_ACCESS_DENIED = 1227;

export async function checkWritableMaster(connection: Connection): Promise<MasterCheck> {
  const problems: string[] = [];
  const warnings: string[] = [];
  const [[vars]] = await connection.query<RowDataPacket[]>(
    'SELECT @@read_only AS readOnly, @@version AS version',
  );
  if (Number(vars?.readOnly) === 1)
    problems.push('it is read-only (@@read_only = 1) and would refuse every write');
  let status: RowDataPacket | undefined;
  try {
    [[status]] = await connection.query<RowDataPacket[]>(
      defaultReplicationStatusSql(flavourOfVersion(String(vars?.version ?? ''))),
    );
  } catch (error) {
    if ((error as { errno?: number }).errno !== ER_SPECIFIC_ACCESS_DENIED) throw error;
    warnings.push(
      'whether it still replicates could not be read (the account needs SLAVE MONITOR or REPLICATION CLIENT)',
    );
  }
  if (!status) return { problems, warnings };
  const source = `${status.Master_Host ?? status.Source_Host ?? '?'}:${status.Master_Port ?? status.Source_Port ?? '?'}`;
  const threads = ['IO', 'SQL'].map((t) => {
    const name = `Slave_${t}_Running` in status ? `Slave_${t}_Running` : `Replica_${t}_Running`;
    return { name, value: String(status[name] ?? '') };
  });
  const running = threads.filter((t) => t.value !== 'No' && t.value !== '');
  if (running.length > 0) {
    problems.push(
      `it still replicates from ${source} (${running.map((t) => `${t.name}: ${t.value}`).join(', ')})`,
    );
  } else {
    warnings.push(
      `its replication from ${source} is stopped but still configured: a restart or START SLAVE would make it follow that server again (RESET SLAVE ALL removes it)`,
    );
  }
  if (typeof status.Gtid_IO_Pos === 'string' && status.Gtid_IO_Pos !== '') {
    const [[applied]] = await connection.query<RowDataPacket[]>('SELECT @@gtid_slave_pos AS pos');
    const missing = gtidsAhead(status.Gtid_IO_Pos, String(applied?.pos ?? ''));
    if (missing.length > 0)
      problems.push(
        `it received transactions it has not applied (Gtid_IO_Pos ${status.Gtid_IO_Pos}, applied ${applied?.pos || 'nothing'}): let its SQL thread apply them (START SLAVE SQL_THREAD; SELECT MASTER_GTID_WAIT('${status.Gtid_IO_Pos}')) before RESET SLAVE ALL discards them`,
      );
  }
  return { problems, warnings };
}

/**
 * The MariaDB GTID positions (`domain-server-seq`, comma-separated, one per domain) of `received`
 * whose domain `applied` has not reached.
 */
export function gtidsAhead(received: string, applied: string): string[] {
  const seqOf = (list: string) =>
    new Map(
      list
        .split(',')
        .map((g) => g.trim().split('-'))
        .filter((p) => p.length === 3 && /^\d+$/.test(p[2]!))
        .map(([domain, , seq]) => [domain!, BigInt(seq!)] as const),
    );
  const done = seqOf(applied);
  return received
    .split(',')
    .map((g) => g.trim())
    .filter((g) => {
      const [domain, , seq] = g.split('-');
      return seq !== undefined && /^\d+$/.test(seq) && BigInt(seq) > (done.get(domain!) ?? -1n);
    });
}
