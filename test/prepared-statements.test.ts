/**
 * The prepared repository statements against real MariaDB (the unit tests use memory repos):
 * every filter combination of the book list (author, cursor) and of the loan list (cursor), a
 * borrow and a return, page after page. And the commit's GTID taken from the COMMIT's OK packet
 * (`last_gtid` session tracking): a write transaction runs no SELECT of its own to learn it, and
 * the position it answers is the commit's own.
 */
import { drizzle } from 'drizzle-orm/mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionInitSql } from '../src/db/mysql-node-set.js';
import { MysqlSession } from '../src/db/mysql-session.js';
import { SqlContext } from '../src/db/repos/sql-context.js';
import { StatementBatcher } from '../src/db/statement-batcher.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { appConnection } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('prep');
let token = '';
const bookIds: string[] = [];
/** the consistency token of the latest write: reads see it (a replica that applied it, or the master) */
let seen = '';

beforeAll(async () => {
  await createTenant(tenant, topology.shards[0]!.id);
  ({ token } = await registerAndLogin(tenant, `librarian@${tenant}.example`));
  // 5 books: authors A, B, A, B, A (creation order = id order)
  for (let i = 0; i < 5; i++) {
    const r = await api('POST', '/v1/books', {
      tenant,
      token,
      body: {
        isbn: `978000000000${i}`,
        title: `Book ${i}`,
        author: i % 2 === 0 ? 'Author A' : 'Author B',
        copies: 3,
      },
    });
    expect(r.status).toBe(201);
    bookIds.push(r.json.id);
    seen = r.headers.get('X-Consistency-Token')!;
  }
});
afterAll(() => removeTenant(tenant));

/** every page of a listing, following nextCursor; each read at least at the latest write */
async function allPages(path: string, limit: number): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const r = await api(
      'GET',
      `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      {
        tenant,
        token,
        headers: { 'X-Consistency-Token': seen },
      },
    );
    expect(r.status, r.text).toBe(200);
    pages.push(r.json.items.map((b: { id: string }) => b.id));
    cursor = r.json.nextCursor;
  } while (cursor && pages.length < 10);
  return pages;
}

describe('prepared statements on MariaDB', () => {
  it('list books by every filter combination, page after page', async () => {
    const a = bookIds.filter((_, i) => i % 2 === 0);
    expect(await allPages('/v1/books', 2)).toEqual([
      bookIds.slice(0, 2),
      bookIds.slice(2, 4),
      bookIds.slice(4),
    ]);
    expect(await allPages('/v1/books?author=Author%20A', 2)).toEqual([a.slice(0, 2), a.slice(2)]);
    expect(await allPages('/v1/books?author=Author%20C', 2)).toEqual([[]]);
  });

  it('borrow, list own loans newest first page after page, and return', async () => {
    const loans: string[] = [];
    for (const id of bookIds.slice(0, 3)) {
      const r = await api('POST', '/v1/loans', { tenant, token, body: { bookId: id } });
      expect(r.status, r.text).toBe(201);
      loans.push(r.json.id);
      seen = r.headers.get('X-Consistency-Token')!;
    }
    expect(await allPages('/v1/loans', 2)).toEqual([[loans[2], loans[1]], [loans[0]]]);
    const returned = await api('POST', `/v1/loans/${loans[0]}/return`, { tenant, token });
    expect(returned.status, returned.text).toBe(200);
    expect(returned.json.returnedAt).toEqual(expect.any(String));
    const book = await api('GET', `/v1/books/${bookIds[0]}`, {
      tenant,
      headers: { 'X-Consistency-Token': returned.headers.get('X-Consistency-Token')! },
    });
    expect(book.json.available).toBe(3);
    expect((await api('POST', `/v1/loans/${loans[0]}/return`, { tenant, token })).status).toBe(409);
  });
});

describe('the GTID of a commit', () => {
  it('comes from the COMMIT answer: no SELECT of its own, and it is the commit’s last_gtid', async () => {
    const master = topology.shards[0]!.master;
    const connection = await appConnection(master.port);
    try {
      await connection.query(sessionInitSql(5));
      const client = new StatementBatcher(connection);
      const session = new MysqlSession(
        'mariadb',
        new SqlContext(drizzle({ client: client as never }), client),
      );
      const selects = async () => {
        const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Com_select'");
        return Number((rows as { Value: string }[])[0]!.Value);
      };
      // what two status reads count by themselves, then the same around a write transaction
      const idle = -(await selects()) + (await selects());
      const before = await selects();
      const { gtid } = await session.transaction(async (sql) => {
        await sql.client.query(
          `INSERT INTO tenant_state (tenant_id, members_registered, created_at) VALUES ('${tenant}-g', 0, NOW(3))`,
        );
      });
      expect((await selects()) - before).toBe(idle);
      const [rows] = await connection.query('SELECT @@last_gtid AS g');
      expect(gtid).toBe((rows as { g: string }[])[0]!.g);
      expect(gtid).toMatch(/^\d+-\d+-\d+$/);
      await connection.query(`DELETE FROM tenant_state WHERE tenant_id = '${tenant}-g'`);
    } finally {
      await connection.end();
    }
  });
});
