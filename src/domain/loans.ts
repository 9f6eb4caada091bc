/**
 * Loan rules. Borrowing is one transaction on the master: insert the loan, queue the receipt,
 * and take a free copy with a conditional update (`available > 0`) — so concurrent borrowers
 * never get more copies than exist. The book row is changed LAST in both borrow and return, and
 * in both the COMMIT leaves in the same round trip as those last statements (`tx.commitWith`):
 * the book's row lock is held for the commit alone, so requests for one popular book queue on it
 * for the shortest time. A borrow's copy is taken by a guard (`BookRepo.takeCopyOrStop`): no free
 * copy stops the round trip before its COMMIT, and the loan and the receipt roll back (409). A
 * member may hold several copies of one book (the contract is silent; nothing in the model
 * forbids it). Only the borrower can return a loan: to anyone else another member's loan does
 * not exist (404), which tells nothing about other members' loans.
 *
 * Statements that do not wait for each other's answers are issued together (`Promise.all`, in
 * the order they run); the SQL adapter sends each such group in one round trip
 * (db/statement-batcher.ts), so a borrow and a return are two round trips each: START with the
 * reads, then the writes with the COMMIT. A return locks the loan row in its first round trip,
 * before it knows the token's member is still valid (an invalid one rolls back in the same
 * request), and reads the loan's book beside it; its mark of the loan is guarded like a borrow's
 * copy (`LoanRepo.markReturnedOrStop`).
 *
 * Times (a loan's, its book's `updated_at`, the receipt's outbox row) are the database server's
 * clock (`tx.now()`, read in the first round trip), not this instance's; a return never ends
 * before its borrow (`endOfLoan`).
 */
import { encodeCursor, listScope } from './cursor.js';
import {
  CommitGuardError,
  type DataAccess,
  type ReadOptions,
  type ReadOutcome,
  type TenantRef,
  type WriteOutcome,
} from './data-access.js';
import { newId } from './ids.js';
import { latest } from './latest.js';
import { actingMember, readAsMember } from './member-access.js';
import type { Principal } from './member-tokens.js';
import type { Loan, Page } from './models.js';
import { fail, ok, type Result } from './result.js';
import { tenantPayload } from './tenant-payload.js';

export function borrowBook(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  bookId: string,
): Promise<WriteOutcome<Loan>> {
  return data.write(tenant, async (repos, tx) => {
    // the book is a plain read: the title and author for the receipt, and 404 before anything is written
    // and the time of the borrow, the database server's (tx.now), read beside them
    const [actor, book, now] = await Promise.all([
      actingMember(repos, principal),
      repos.books.findById(bookId),
      tx.now(),
    ]);
    if (!actor.ok) return actor;
    if (!book) return fail('not_found', 'book_not_found', 'no such book in this tenant');
    const loan: Loan = {
      id: newId(now.getTime()),
      bookId,
      memberId: actor.value.id,
      borrowedAt: now,
      returnedAt: null,
    };
    try {
      // the loan, its receipt and the copy leave with the COMMIT: the guard stops it when no copy
      // was free (409), or the book was deleted since the read above (404: an outside check had a
      // third of the borrows racing a delete told that every copy was on loan)
      await tx.commitWith(() =>
        Promise.all([
          repos.loans.insert(loan),
          repos.outbox.add(
            {
              kind: 'loan_receipt',
              recipient: actor.value.email,
              payload: {
                ...tenantPayload(tenant),
                memberId: actor.value.id,
                name: actor.value.name,
                loanId: loan.id,
                bookId,
                title: book.title,
                author: book.author,
                borrowedAt: now.toISOString(),
              },
            },
            now,
          ),
          repos.books.takeCopyOrStop(bookId, now),
        ]),
      );
    } catch (error) {
      if (error instanceof CommitGuardError && error.stop === 'no_row')
        return fail('not_found', 'book_not_found', 'no such book in this tenant');
      if (error instanceof CommitGuardError) {
        // (the book as read above: a librarian may have changed its copies since)
        const detail =
          book.copies === 0
            ? 'this book has no copies to lend (copies is 0)'
            : 'every copy of this book is on loan';
        return fail('conflict', 'no_copy_available', detail);
      }
      throw error;
    }
    return ok(loan);
  });
}

export function returnLoan(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  loanId: string,
): Promise<WriteOutcome<Loan>> {
  return data.write(tenant, async (repos, tx) => {
    // the loan locked, and its book (title and author for the receipt) read plainly beside it
    const [actor, loan, book, now] = await Promise.all([
      actingMember(repos, principal),
      repos.loans.findByIdForUpdate(loanId),
      repos.books.findByLoan(loanId),
      tx.now(),
    ]);
    if (!actor.ok) return actor;
    if (!loan || loan.memberId !== actor.value.id)
      return fail('not_found', 'loan_not_found', 'no such loan of yours');
    if (loan.returnedAt !== null)
      return fail('conflict', 'already_returned', 'this loan was returned already');
    const returnedAt = endOfLoan(loan.borrowedAt, now);
    try {
      // the mark, the receipt and the copy put back leave with the COMMIT; the mark's guard
      // cannot stop it while the loan row is locked, and keeps the rule if that ever changes
      await tx.commitWith(() =>
        Promise.all([
          repos.loans.markReturnedOrStop(loanId, returnedAt),
          repos.outbox.add(
            {
              kind: 'return_receipt',
              recipient: actor.value.email,
              payload: {
                ...tenantPayload(tenant),
                memberId: actor.value.id,
                name: actor.value.name,
                loanId,
                bookId: loan.bookId,
                title: book?.title ?? null,
                author: book?.author ?? null,
                borrowedAt: loan.borrowedAt.toISOString(),
                returnedAt: returnedAt.toISOString(),
              },
            },
            now,
          ),
          // last (see above); a book deleted meanwhile has no copy to put back, and the return stands
          repos.books.returnCopy(loan.bookId, now),
        ]),
      );
    } catch (error) {
      if (error instanceof CommitGuardError) {
        return fail('conflict', 'already_returned', 'this loan was returned already');
      }
      throw error;
    }
    return ok({ ...loan, returnedAt });
  });
}

/**
 * When a loan returned at `now` (the server's clock) ends: never before it began. Both times come
 * from the master's clock since the borrow and the return read it (tx.now); before, each came from
 * the clock of the instance that served its request, and a loan borrowed on an instance 300 s ahead
 * and returned on one with the right time ended 298 s before it began (an outside check). A loan
 * borrowed so, or on a master whose clock was ahead of its successor's, ends when it began rather
 * than before: the return's mail still leaves at once (its outbox row takes `now`).
 */
export function endOfLoan(borrowedAt: Date, now: Date): Date {
  return latest(now, borrowedAt);
}

/** One loan of the calling member; another member's loan does not exist (404), as on return. */
export function getLoan(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  loanId: string,
  options: ReadOptions,
): Promise<ReadOutcome<Result<Loan>>> {
  return readAsMember(data, tenant, principal, options, async (repos, member) => {
    const loan = await repos.loans.findById(loanId);
    if (!loan || loan.memberId !== member.id)
      return fail('not_found', 'loan_not_found', 'no such loan of yours');
    return ok(loan);
  });
}

export function listLoans(
  data: DataAccess,
  tenant: TenantRef,
  principal: Principal,
  query: { beforeId?: string; limit: number },
  options: ReadOptions,
): Promise<ReadOutcome<Result<Page<Loan>>>> {
  return readAsMember(data, tenant, principal, options, async (repos, member) => {
    const rows = await repos.loans.listByMember({
      memberId: member.id,
      beforeId: query.beforeId,
      limit: query.limit + 1,
    });
    const items = rows.slice(0, query.limit);
    const nextCursor =
      rows.length > query.limit
        ? encodeCursor(items[items.length - 1]!.id, listScope.loans(tenant.id, member.id))
        : null;
    return ok({ items, nextCursor });
  });
}
