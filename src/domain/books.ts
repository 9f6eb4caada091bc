/**
 * Book rules: librarians create, change and delete; anyone reads. `available` moves with the
 * copies: raising `copies` by n adds n free copies; lowering it below the copies on loan is a
 * conflict, as is deleting a book with a copy on loan.
 */
import { encodeCursor, listScope } from './cursor.js';
import type { DataAccess, ReadOptions, ReadOutcome, TenantRef, WriteOutcome } from './data-access.js';
import { newId } from './ids.js';
import { latest } from './latest.js';
import { actingMember } from './member-access.js';
import type { Principal } from './member-tokens.js';
import type { Book, Page } from './models.js';
import { fail, ok, type Result } from './result.js';

export interface BookInput {
  isbn: string;
  title: string;
  author: string;
  copies: number;
}

const BOOK_NOT_FOUND = fail('not_found', 'book_not_found', 'no such book in this tenant');

export function createBook(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  input: BookInput,
): Promise<WriteOutcome<Book>> {
  return data.write(tenant, async (repos, tx) => {
    // the time is the database server's (tx.now), read beside the member
    const [actor, now] = await Promise.all([actingMember(repos, principal, { librarian: true }), tx.now()]);
    if (!actor.ok) return actor;
    const book: Book = {
      id: newId(now.getTime()),
      ...input,
      available: input.copies,
      createdAt: now,
      updatedAt: now,
    };
    await tx.commitWith(() => repos.books.insert(book));
    return ok(book);
  });
}

export async function getBook(
  data: DataAccess,
  tenant: TenantRef,
  id: string,
  options: ReadOptions,
): Promise<ReadOutcome<Result<Book>>> {
  const found = await data.read(tenant, options, (repos) => repos.books.findById(id));
  return { value: found.value ? ok(found.value) : BOOK_NOT_FOUND, readFrom: found.readFrom };
}

export async function listBooks(
  data: DataAccess,
  tenant: TenantRef,
  query: { author?: string; afterId?: string; limit: number },
  options: ReadOptions,
): Promise<ReadOutcome<Page<Book>>> {
  const rows = await data.read(tenant, options, (repos) =>
    repos.books.list({ ...query, limit: query.limit + 1 }),
  );
  const items = rows.value.slice(0, query.limit);
  const nextCursor =
    rows.value.length > query.limit
      ? encodeCursor(items[items.length - 1]!.id, listScope.books(tenant.id, query.author))
      : null;
  return { value: { items, nextCursor }, readFrom: rows.readFrom };
}

export function updateBook(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  id: string,
  patch: Partial<BookInput>,
): Promise<WriteOutcome<Book>> {
  return data.write(tenant, async (repos, tx) => {
    const [actor, now] = await Promise.all([actingMember(repos, principal, { librarian: true }), tx.now()]);
    if (!actor.ok) return actor;
    const book = await repos.books.findByIdForUpdate(id);
    if (!book) return BOOK_NOT_FOUND;
    const copies = patch.copies ?? book.copies;
    const available = book.available + (copies - book.copies);
    if (available < 0) {
      return fail(
        'conflict',
        'copies_on_loan',
        `${onLoan(book.copies - book.available)} on loan; copies cannot go below that`,
      );
    }
    // never before the row's creation or last change: `now` is read before the row lock, so a
    // PATCH that waited for a concurrent one holds an earlier time (and rows written while an
    // instance's clock set the times may be ahead of the server's)
    const updatedAt = latest(now, book.updatedAt, book.createdAt);
    const updated: Book = { ...book, ...patch, copies, available, updatedAt };
    await tx.commitWith(() => repos.books.update(updated));
    return ok(updated);
  });
}

export function deleteBook(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  id: string,
): Promise<WriteOutcome<void>> {
  return data.write(tenant, async (repos, tx) => {
    const actor = await actingMember(repos, principal, { librarian: true });
    if (!actor.ok) return actor;
    const book = await repos.books.findByIdForUpdate(id);
    if (!book) return BOOK_NOT_FOUND;
    if (book.available < book.copies) {
      return fail('conflict', 'book_on_loan', 'a copy of this book is on loan; it cannot be deleted');
    }
    await tx.commitWith(() => repos.books.delete(id));
    return ok(undefined);
  });
}

/** "1 copy is", "2 copies are" */
function onLoan(n: number): string {
  return n === 1 ? '1 copy is' : `${n} copies are`;
}
