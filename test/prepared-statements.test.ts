/**
 * The prepared repository statements against real MariaDB (the unit tests use memory repos):
 * every filter combination of the book list (author, cursor) and of the loan list (cursor), a
 * borrow and a return, page after page. And the commit's GTID taken from the COMMIT's OK packet
 * (`last_gtid` session tracking): a write transaction runs no SELECT of its own to learn it, and
 * the position it answers is the commit's own — also when the COMMIT leaves with the last
 * statements (`commitWith`), which then takes one round trip fewer, and commits nothing when one
 * of them fails. A guard among those statements (`takeCopyOrStop`) stops the COMMIT in that same
 * round trip when no copy is taken. And the lists read a page, not the tenant, when one author
 * holds the newest tenth of its books or one member the oldest tenth of its loans.
 */
import { drizzle } from 'drizzle-orm/mysql2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionInitSql } from '../src/db/mysql-node-set.js';
import { MysqlSession } from '../src/db/mysql-session.js';
import { SqlContext } from '../src/db/repos/sql-context.js';
import { drizzleTenantRepos } from '../src/db/repos/tenant-repos.js';
import { SqlDataAccess } from '../src/db/sql-data-access.js';
import { StatementBatcher } from '../src/db/statement-batcher.js';
import { CommitGuardError } from '../src/domain/data-access.js';
import { borrowBook, returnLoan } from '../src/domain/loans.js';
import { topology } from '../stack/topology.js';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { appConnection } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('prep');
let token = '';
let memberId = '';
const bookIds: string[] = [];
/** the consistency token of the latest write: reads see it (a replica that applied it, or the master) */
let seen = '';

beforeAll(async () => {
  await createTenant(tenant, topology.shards[0]!.id);
  ({
    token,
    member: { id: memberId },
  } = await registerAndLogin(tenant, `librarian@${tenant}.example`));
  // 5 books: authors A, B, A, B, A (creation order = id order: all made by one instance, whose ids
  // are monotonic; two instances' ids within one millisecond are not ordered, src/domain/ids.ts)
  for (let i = 0; i < 5; i++) {
    const r = await api('POST', '/v1/books', {
      tenant,
      token,
      base: INSTANCES[0],
      body: {
        isbn: `97800000000${i}${(10 - ((38 + 3 * i) % 10)) % 10}`, // 978-0-00-00000i, check digit included
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
      const r = await api('POST', '/v1/loans', { tenant, token, base: INSTANCES[0], body: { bookId: id } });
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

/** a MysqlSession over a fresh application connection, counting the queries it sends */
async function countedSession() {
  const master = topology.shards[0]!.master;
  const connection = await appConnection(master.port);
  await connection.query(sessionInitSql(5));
  const sent: string[] = [];
  const client = new StatementBatcher({
    query: (options, values) => {
      sent.push(options.sql);
      return connection.query(options, values as never) as Promise<[unknown, unknown]>;
    },
    format: (text, values) => connection.format(text, values),
  });
  const session = new MysqlSession('mariadb', new SqlContext(drizzle({ client: client as never }), client));
  const selects = async () => {
    const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Com_select'");
    return Number((rows as { Value: string }[])[0]!.Value);
  };
  return { connection, session, sent, selects };
}

const insertState = (id: string) =>
  `INSERT INTO tenant_state (tenant_id, members_registered, created_at) VALUES ('${id}', 0, NOW(3))`;

describe('the GTID of a commit', () => {
  it.each([
    { how: 'after the last statements', early: false, roundTrips: 2 },
    { how: 'with the last statements (commitWith)', early: true, roundTrips: 1 },
  ])('comes from the COMMIT answer $how: no SELECT of its own, and it is the commit’s last_gtid', async ({
    early,
    roundTrips,
  }) => {
    const { connection, session, sent, selects } = await countedSession();
    const id = `${tenant}-g${early ? 'e' : 'l'}`;
    try {
      // what two status reads count by themselves, then the same around a write transaction
      const idle = -(await selects()) + (await selects());
      const before = await selects();
      const { gtid } = await session.transaction(async (sql, tx) => {
        if (early) await tx.commitWith(() => sql.client.query(insertState(id)));
        else await sql.client.query(insertState(id));
      });
      expect((await selects()) - before).toBe(idle);
      // START rides with the INSERT; the COMMIT with them too, or alone after their answer
      expect(sent).toHaveLength(roundTrips);
      expect(sent.at(-1)).toMatch(/COMMIT$/);
      const [rows] = await connection.query('SELECT @@last_gtid AS g, @@in_transaction AS t');
      const { g, t } = (rows as { g: string; t: number }[])[0]!;
      expect(t).toBe(0);
      expect(gtid).toBe(g);
      expect(gtid).toMatch(/^\d+-\d+-\d+$/);
      const [found] = await connection.query('SELECT tenant_id FROM tenant_state WHERE tenant_id = ?', [id]);
      expect(found).toHaveLength(1);
    } finally {
      await connection.query('DELETE FROM tenant_state WHERE tenant_id IN (?)', [[id]]);
      await connection.end();
    }
  });

  it('commits nothing when a statement that leaves with the COMMIT fails', async () => {
    const { connection, session, sent } = await countedSession();
    const [first, second] = [`${tenant}-f1`, `${tenant}-f2`];
    try {
      await connection.query(insertState(second));
      const attempt = session.transaction(async (sql, tx) => {
        await sql.client.query(insertState(first));
        // the second INSERT is a duplicate key: the server stops there, before the COMMIT
        await tx.commitWith(() => sql.client.query(insertState(second)));
      });
      await expect(attempt).rejects.toMatchObject({ code: 'ER_DUP_ENTRY' });
      expect(sent.at(-2)).toMatch(/COMMIT$/);
      // the ROLLBACK's round trip also reads the master's position (a refusal's consistency token)
      expect(sent.at(-1)).toBe('ROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos');
      const [rows] = await connection.query(
        'SELECT tenant_id FROM tenant_state WHERE tenant_id IN (?) ORDER BY tenant_id',
        [[first, second]],
      );
      expect(rows).toEqual([{ tenant_id: second }]);
    } finally {
      await connection.query('DELETE FROM tenant_state WHERE tenant_id IN (?)', [[first, second]]);
      await connection.end();
    }
  });
});

describe('a guard of the COMMIT (takeCopyOrStop)', () => {
  const available = async (connection: Awaited<ReturnType<typeof appConnection>>, id: string) => {
    const [rows] = await connection.query('SELECT available FROM books WHERE tenant_id = ? AND id = ?', [
      tenant,
      id,
    ]);
    return (rows as { available: number }[])[0]?.available;
  };

  it('commits with the copy it took, in the same round trip', async () => {
    const { connection, session, sent } = await countedSession();
    const id = `${tenant}-gt`;
    const book = bookIds[4]!;
    try {
      const before = await available(connection, book);
      await session.transaction(async (sql, tx) => {
        const repos = drizzleTenantRepos(sql, tenant);
        await tx.commitWith(() =>
          Promise.all([sql.client.query(insertState(id)), repos.books.takeCopyOrStop(book, new Date())]),
        );
      });
      // START, the INSERT, the UPDATE, its guard and the COMMIT: one multi-statement
      expect(sent).toHaveLength(1);
      expect(sent[0]).toMatch(
        /^START TRANSACTION;\n.*INSERT.*;\nupdate `books`.*;\nSET @shardgate_guard.*;\nCOMMIT$/s,
      );
      expect(await available(connection, book)).toBe(before! - 1);
      const [found] = await connection.query('SELECT tenant_id FROM tenant_state WHERE tenant_id = ?', [id]);
      expect(found).toHaveLength(1);
    } finally {
      await connection.query('UPDATE books SET available = available + 1 WHERE tenant_id = ? AND id = ?', [
        tenant,
        book,
      ]);
      await connection.query('DELETE FROM tenant_state WHERE tenant_id = ?', [id]);
      await connection.end();
    }
  });

  it("never moves a book's updated_at back: a time read before the row lock, the later committer's", async () => {
    const { connection, session } = await countedSession();
    const book = bookIds[2]!;
    const updatedAt = async () => {
      const [rows] = await connection.query(
        'SELECT UNIX_TIMESTAMP(updated_at) * 1000 AS t FROM books WHERE tenant_id = ? AND id = ?',
        [tenant, book],
      );
      return Number((rows as { t: string }[])[0]!.t);
    };
    try {
      const before = await updatedAt();
      const earlier = new Date(before - 3_600_000);
      await session.transaction(async (sql, tx) => {
        const repos = drizzleTenantRepos(sql, tenant);
        await tx.commitWith(() => repos.books.takeCopyOrStop(book, earlier));
      });
      expect(await updatedAt()).toBe(before);
      await session.transaction(async (sql, tx) => {
        const repos = drizzleTenantRepos(sql, tenant);
        await tx.commitWith(() => repos.books.returnCopy(book, earlier));
      });
      expect(await updatedAt()).toBe(before);
      // a later time still moves it
      const later = new Date(before + 1_000);
      await session.transaction(async (sql, tx) => {
        const repos = drizzleTenantRepos(sql, tenant);
        await tx.commitWith(() => repos.books.takeCopyOrStop(book, later));
      });
      expect(await updatedAt()).toBe(later.getTime());
    } finally {
      await connection.query('UPDATE books SET available = copies WHERE tenant_id = ? AND id = ?', [
        tenant,
        book,
      ]);
      await connection.end();
    }
  });

  it.each([
    { no: 'free copy', book: 'none-free' },
    { no: 'such book', book: 'missing' },
  ])('stops the round trip before its COMMIT when there is no $no: CommitGuardError, nothing committed', async ({
    book,
  }) => {
    const { connection, session, sent } = await countedSession();
    const id = `${tenant}-gs-${book}`;
    const bookId = book === 'missing' ? 'no-such-book' : bookIds[3]!;
    try {
      if (book === 'none-free')
        await connection.query('UPDATE books SET available = 0 WHERE tenant_id = ? AND id = ?', [
          tenant,
          bookId,
        ]);
      const attempt = session.transaction(async (sql, tx) => {
        const repos = drizzleTenantRepos(sql, tenant);
        await tx.commitWith(() =>
          Promise.all([sql.client.query(insertState(id)), repos.books.takeCopyOrStop(bookId, new Date())]),
        );
      });
      await expect(attempt).rejects.toBeInstanceOf(CommitGuardError);
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/COMMIT$/);
      expect(sent[1]).toBe('ROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos');
      const [found] = await connection.query('SELECT tenant_id FROM tenant_state WHERE tenant_id = ?', [id]);
      expect(found).toHaveLength(0);
      if (book === 'none-free') expect(await available(connection, bookId)).toBe(0);
      // the connection is usable again, outside any transaction
      const [rows] = await connection.query('SELECT @@in_transaction AS t');
      expect((rows as { t: number }[])[0]!.t).toBe(0);
    } finally {
      if (book === 'none-free')
        await connection.query('UPDATE books SET available = copies WHERE tenant_id = ? AND id = ?', [
          tenant,
          bookId,
        ]);
      await connection.query('DELETE FROM tenant_state WHERE tenant_id = ?', [id]);
      await connection.end();
    }
  });
});

describe('a borrow and a return through the domain', () => {
  it('take two round trips each: START with the reads, then the writes with the COMMIT', async () => {
    const { connection, session, sent } = await countedSession();
    // the domain over this one counted session (the router's part is not under test here)
    const data = new SqlDataAccess({
      router: {
        master: () => ({ run: (f: never) => (f as (s: unknown) => unknown)(session) }),
        noteCommitted: () => {},
      } as never,
    });
    const ref = { id: tenant, shardId: topology.shards[0]!.id };
    const principal = { tenantId: tenant, memberId, passwordVersion: 1 };
    const book = bookIds[4]!;
    try {
      const borrowed = await borrowBook(data, ref, principal, book);
      expect(borrowed.result.ok, JSON.stringify(borrowed.result)).toBe(true);
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^START TRANSACTION;\n/);
      expect(sent[1]).toMatch(/SET @shardgate_guard.*;\nCOMMIT$/s);
      const loanId = borrowed.result.ok ? borrowed.result.value.id : '';

      sent.length = 0;
      const returned = await returnLoan(data, ref, principal, loanId);
      expect(returned.result.ok, JSON.stringify(returned.result)).toBe(true);
      expect(returned.position?.gtid).toMatch(/^\d+-\d+-\d+$/);
      expect(sent).toHaveLength(2);
      expect(sent[0]).toMatch(/^START TRANSACTION;\n.*for update;\n.*inner join `books`/s);
      expect(sent[1]).toMatch(
        /^update `loans`.*;\nSET @shardgate_guard.*;\ninsert into `outbox`.*;\nupdate `books`.*;\nCOMMIT$/s,
      );
      const [rows] = await connection.query(
        'SELECT l.returned_at IS NOT NULL AS r, b.available, b.copies FROM loans l JOIN books b ON b.tenant_id = l.tenant_id AND b.id = l.book_id WHERE l.tenant_id = ? AND l.id = ?',
        [tenant, loanId],
      );
      expect(rows).toEqual([{ r: 1, available: 3, copies: 3 }]);
      const [receipt] = await connection.query(
        "SELECT JSON_VALUE(payload, '$.title') AS title FROM outbox WHERE tenant_id = ? AND kind = 'return_receipt' AND JSON_VALUE(payload, '$.loanId') = ?",
        [tenant, loanId],
      );
      expect(receipt).toEqual([{ title: 'Book 4' }]);

      // a second return: refused in the first round trip (returned already), nothing written
      sent.length = 0;
      const again = await returnLoan(data, ref, principal, loanId);
      expect(again.result).toMatchObject({ ok: false, code: 'already_returned' });
      expect(sent).toEqual([
        expect.stringMatching(/^START TRANSACTION;/),
        'ROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos',
      ]);
      // the refusal's position, read with the ROLLBACK: at least the return's commit
      expect(again.position?.gtid).toMatch(/^\d+-\d+-\d+/);
    } finally {
      await connection.end();
    }
  });
});

describe('the lists read a page, not the tenant, when one author or member dominates', () => {
  // rows written here directly: 100,000 books, the newest 12,000 by one author, and 100,000
  // loans, the oldest 12,000 of one member. Left to choose, MariaDB walks the primary key for
  // such a page (88,021 rows read for 21 here; an outside check saw 86,475). At 40,000 rows with
  // the same shares it still picks the index, so the test needs this many to fail without it.
  const skewed = uniqueTenantId('prep-skew');
  const N = 100_000;
  const FEW = 12_000;
  const id = (i: number) => `01J${String(i).padStart(23, '0')}`;
  let connection: Awaited<ReturnType<typeof appConnection>>;
  let repos: ReturnType<typeof drizzleTenantRepos>;

  beforeAll(async () => {
    ({ connection } = await countedSession());
    const client = new StatementBatcher({
      query: (options, values) => connection.query(options, values as never) as Promise<[unknown, unknown]>,
      format: (text, values) => connection.format(text, values),
    });
    repos = drizzleTenantRepos(new SqlContext(drizzle({ client: client as never }), client), skewed);
    const at = '2026-01-01 00:00:00.000';
    for (let from = 0; from < N; from += 2000) {
      const rows = Array.from({ length: 2000 }, (_, k) => from + k);
      await connection.query(
        'INSERT INTO books (tenant_id, id, isbn, title, author, copies, available, created_at, updated_at) VALUES ?',
        [
          rows.map((i) => [
            skewed,
            id(i),
            '0306406152',
            `B${i}`,
            i >= N - FEW ? 'New Author' : 'Old Author',
            1,
            1,
            at,
            at,
          ]),
        ],
      );
      await connection.query(
        'INSERT INTO loans (tenant_id, id, book_id, member_id, borrowed_at, returned_at) VALUES ?',
        [rows.map((i) => [skewed, id(i), id(i), i < FEW ? 'M-OLD' : 'M-NEW', at, at])],
      );
    }
  }, 120_000);
  afterAll(async () => {
    await connection.query('DELETE FROM loans WHERE tenant_id = ?', [skewed]);
    await connection.query('DELETE FROM books WHERE tenant_id = ?', [skewed]);
    await connection.end();
  }, 120_000);

  /** rows the server's handlers read for `fn`, on this connection */
  async function rowsRead(fn: () => Promise<unknown>): Promise<number> {
    const read = async () => {
      const [rows] = await connection.query("SHOW SESSION STATUS LIKE 'Handler_read%'");
      return (rows as { Variable_name: string; Value: string }[])
        .filter((r) => /^Handler_read_(next|prev|rnd_next|key|first|last)$/.test(r.Variable_name))
        .reduce((sum, r) => sum + Number(r.Value), 0);
    };
    const before = await read();
    await fn();
    return (await read()) - before;
  }

  it("an author's first page (and a cursor page, for its rows)", async () => {
    let page: Awaited<ReturnType<typeof repos.books.list>> = [];
    const first = await rowsRead(async () => {
      page = await repos.books.list({ author: 'New Author', limit: 21 });
    });
    expect(page.map((b) => b.id)).toEqual(Array.from({ length: 21 }, (_, k) => id(N - FEW + k)));
    // before: about 88,000 (every older book walked by id); a page and SHOW STATUS's own reads now
    expect(first).toBeLessThan(200);
    // a cursor page read 21 rows here with or without the hint (a review): checked for its rows
    page = await repos.books.list({ author: 'New Author', afterId: id(N - 100), limit: 21 });
    expect(page.map((b) => b.id)).toEqual(Array.from({ length: 21 }, (_, k) => id(N - 99 + k)));
  });

  it("a member's first page of loans, newest first", async () => {
    let page: Awaited<ReturnType<typeof repos.loans.listByMember>> = [];
    const read = await rowsRead(async () => {
      page = await repos.loans.listByMember({ memberId: 'M-OLD', limit: 21 });
    });
    expect(page.map((l) => l.id)).toEqual(Array.from({ length: 21 }, (_, k) => id(FEW - 1 - k)));
    // before: about 88,000 (every newer loan walked backwards by id)
    expect(read).toBeLessThan(200);
    // the next page, before the first one's last loan: checked for its rows
    page = await repos.loans.listByMember({ memberId: 'M-OLD', beforeId: id(FEW - 21), limit: 21 });
    expect(page.map((l) => l.id)).toEqual(Array.from({ length: 21 }, (_, k) => id(FEW - 22 - k)));
  });
});
