/** Books of one tenant (bound at construction; every statement filters `tenant_id`). */
import { and, asc, eq, gt, lt, sql } from 'drizzle-orm';
import type { Book } from '../../domain/models.js';
import type { BookListQuery, BookRepo } from '../../domain/repositories.js';
import { books } from '../schema.js';
import { affectedRows, type Queryable } from './queryable.js';

type Row = typeof books.$inferSelect;

function toBook(row: Row): Book {
  return {
    id: row.id,
    isbn: row.isbn,
    title: row.title,
    author: row.author,
    copies: row.copies,
    available: row.available,
    createdAt: row.createdAt,
    updatedAt: row.updatedAt,
  };
}

export class DrizzleBookRepo implements BookRepo {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  private byId(id: string) {
    return and(eq(books.tenantId, this.tenantId), eq(books.id, id));
  }

  async findById(id: string): Promise<Book | undefined> {
    const rows = await this.db.select().from(books).where(this.byId(id)).limit(1);
    return rows[0] && toBook(rows[0]);
  }

  async findByIdForUpdate(id: string): Promise<Book | undefined> {
    const rows = await this.db.select().from(books).where(this.byId(id)).limit(1).for('update');
    return rows[0] && toBook(rows[0]);
  }

  async list({ author, afterId, limit }: BookListQuery): Promise<Book[]> {
    // served by the primary key (tenant_id, id) or by (tenant_id, author, id)
    const rows = await this.db
      .select()
      .from(books)
      .where(
        and(
          eq(books.tenantId, this.tenantId),
          author === undefined ? undefined : eq(books.author, author),
          afterId === undefined ? undefined : gt(books.id, afterId),
        ),
      )
      .orderBy(asc(books.id))
      .limit(limit);
    return rows.map(toBook);
  }

  async insert(book: Book): Promise<void> {
    await this.db.insert(books).values({ tenantId: this.tenantId, ...book });
  }

  async update(book: Book): Promise<void> {
    const { id, ...fields } = book;
    await this.db.update(books).set(fields).where(this.byId(id));
  }

  async delete(id: string): Promise<void> {
    await this.db.delete(books).where(this.byId(id));
  }

  async takeCopy(id: string, at: Date): Promise<boolean> {
    const result = await this.db
      .update(books)
      .set({ available: sql`${books.available} - 1`, updatedAt: at })
      .where(and(this.byId(id), gt(books.available, 0)));
    return affectedRows(result) === 1;
  }

  async returnCopy(id: string, at: Date): Promise<void> {
    await this.db
      .update(books)
      .set({ available: sql`${books.available} + 1`, updatedAt: at })
      .where(and(this.byId(id), lt(books.available, books.copies)));
  }
}
