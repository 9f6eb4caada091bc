/**
 * Direct SQL on the local stack's MariaDB nodes as root (127.0.0.1, empty password), for checks an
 * API cannot make: which node holds a row, STOP/START SLAVE. Ports come from stack/topology.ts.
 */
import { type Connection, createConnection } from 'mysql2/promise';
import { dbPassword } from '../../stack/stack-env.js';
import { topology } from '../../stack/topology.js';

export interface DbNode {
  /** the process name in the stack (pid file, logs) */
  name: string;
  shard: string;
  role: 'master' | 'replica';
  port: number;
}

export const DB_NODES: DbNode[] = topology.shards.flatMap((s) => [
  { name: s.master.name, shard: s.id, role: 'master' as const, port: s.master.port },
  ...s.replicas.map((r) => ({ name: r.name, shard: s.id, role: 'replica' as const, port: r.port })),
]);

export function node(shard: string, role: 'master' | 'replica'): DbNode {
  const n = DB_NODES.find((x) => x.shard === shard && x.role === role);
  if (!n) throw new Error(`no ${role} for ${shard} in the topology`);
  return n;
}

export async function rootConnection(port: number): Promise<Connection> {
  return createConnection({
    host: topology.host,
    port,
    user: 'root',
    password: '',
    database: topology.database,
  });
}

/** A connection as the API's database user, with multi-statements on as in the API's pools. */
export async function appConnection(port: number): Promise<Connection> {
  return createConnection({
    host: topology.host,
    port,
    user: topology.dbUser,
    password: dbPassword(),
    database: topology.database,
    multipleStatements: true,
  });
}

/** Run one query as root on a node and close the connection. */
export async function rootQuery<T = Record<string, unknown>>(
  port: number,
  sql: string,
  params: unknown[] = [],
): Promise<T[]> {
  const conn = await rootConnection(port);
  try {
    const [rows] = await conn.query(sql, params);
    return rows as T[];
  } finally {
    await conn.end();
  }
}

/** Row counts of every tenant table for one tenant on one node. */
export async function tenantRowCounts(port: number, tenantId: string): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of ['members', 'books', 'loans', 'outbox', 'tenant_state', 'idempotency_keys']) {
    const rows = await rootQuery<{ n: number }>(
      port,
      `SELECT COUNT(*) AS n FROM \`${table}\` WHERE tenant_id = ?`,
      [tenantId],
    );
    counts[table] = Number(rows[0]?.n ?? 0);
  }
  return counts;
}
