/**
 * The storage ports of the domain. A `TenantRepos` is bound to ONE tenant when it is created
 * (`DataAccess.write/read` build it from the tenant of the request): no method takes a tenant id
 * and every query an adapter runs filters by the bound one, so a row of another tenant — even on
 * the same shard — is simply not found.
 *
 * Methods named `...ForUpdate` lock the row until the transaction ends (only valid inside
 * `DataAccess.write`). Adapters turn storage errors they expect (duplicate key) into return values.
 */
import type { IdempotencyRecord, StoredResponse } from './idempotency.js';
import type { Book, Loan, Member, OutboxMessage } from './models.js';

export interface MemberRepo {
  findById(id: string): Promise<Member | undefined>;
  findByEmail(email: string): Promise<Member | undefined>;
  /** `email_taken` when (tenant, email) exists already */
  insert(member: Member): Promise<'inserted' | 'email_taken'>;
  /**
   * True for exactly one committed registration of the tenant, its first (which makes it the
   * librarian). Concurrent first registrations are serialised on the tenant's counter row until
   * their transactions end, and a rolled-back one does not count; once one has committed, later
   * registrations learn they are not the first without waiting for that row.
   */
  claimFirstRegistration(at: Date): Promise<boolean>;
  /** compare-and-set on the password version; false when it moved (or the member is gone) */
  updatePassword(input: {
    id: string;
    expectedVersion: number;
    passwordHash: string;
    at: Date;
  }): Promise<boolean>;
}

export interface BookListQuery {
  author?: string;
  /** exclusive lower bound of the id (cursor) */
  afterId?: string;
  limit: number;
}

/** Every `find…` of an id finds nothing for a string that is not an id (`isId`, ids.ts). */
export interface BookRepo {
  findById(id: string): Promise<Book | undefined>;
  findByIdForUpdate(id: string): Promise<Book | undefined>;
  /** the book of this tenant's loan `loanId`, a plain read (no lock); undefined when either is gone */
  findByLoan(loanId: string): Promise<Book | undefined>;
  /** ascending by id (creation order) */
  list(query: BookListQuery): Promise<Book[]>;
  insert(book: Book): Promise<void>;
  update(book: Book): Promise<void>;
  delete(id: string): Promise<void>;
  /**
   * Takes one free copy: `available = available - 1`, one statement that the table's CHECK
   * (`available >= 0`) refuses when no copy is free, so concurrent borrowers can never take more
   * copies than exist. A guard of the COMMIT, for `tx.commitWith`'s statements (data-access.ts):
   * it rejects with `CommitGuardError`, stop `check` when no copy is free, `no_row` when the book
   * does not exist (deleted since it was read), and nothing issued after it in the transaction
   * runs, the COMMIT included. Issue it LAST among them: the statements before it still run.
   */
  takeCopyOrStop(id: string, at: Date): Promise<void>;
  /** puts one copy back (never above `copies`) */
  returnCopy(id: string, at: Date): Promise<void>;
}

export interface LoanListQuery {
  memberId: string;
  /** exclusive upper bound of the id (cursor): loans are listed newest first */
  beforeId?: string;
  limit: number;
}

export interface LoanRepo {
  /** a plain read (no lock): for `GET /v1/loans/{id}` */
  findById(id: string): Promise<Loan | undefined>;
  findByIdForUpdate(id: string): Promise<Loan | undefined>;
  insert(loan: Loan): Promise<void>;
  /**
   * Sets `returned_at` only where it is still null. A guard of the COMMIT like
   * `BookRepo.takeCopyOrStop`: when the loan is gone or returned already it rejects with
   * `CommitGuardError`, and nothing issued after it in the transaction runs, the COMMIT included.
   */
  markReturnedOrStop(id: string, at: Date): Promise<void>;
  listByMember(query: LoanListQuery): Promise<Loan[]>;
}

export interface OutboxRepo {
  add(message: OutboxMessage, at: Date): Promise<void>;
}

export interface IdempotencyRepo {
  /**
   * the key's row, unless it is expired by the store's clock (created before `expiredBefore` of
   * the database server's now, the clock `claim`'s `at` and so `createdAt` are of): then as if
   * absent. Judged by the instance's clock, a key of 23 h 58 min by the server was absent to
   * `claim` but present here on an instance 300 s ahead: 409 in progress instead of a replay
   * (a review).
   */
  find(key: string): Promise<IdempotencyRecord | undefined>;
  /**
   * Inside a write, before its own statements: claims `key` for this transaction (the row commits
   * or rolls back with the write). A transaction of another request holding the key makes this
   * wait for it; when that one committed, this throws `IdempotencyKeyTaken`. A row of the key
   * created before `expiredBefore(at)` is deleted first, in the same transaction: the key is free.
   * `claimant` names the process (kept on the row as `claimedBy`).
   */
  claim(key: string, fingerprint: string, at: Date, claimant: string): Promise<void>;
  /** stores the answer of the write that claimed `key` (after its commit) */
  complete(key: string, response: StoredResponse): Promise<void>;
  /** deletes up to `limit` of the tenant's keys expired by the store's clock (as `find`); answers how many */
  purge(limit: number): Promise<number>;
}

export interface TenantRepos {
  readonly tenantId: string;
  members: MemberRepo;
  books: BookRepo;
  loans: LoanRepo;
  outbox: OutboxRepo;
  idempotency: IdempotencyRepo;
}
