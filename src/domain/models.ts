/**
 * The library's records as the domain sees them (no storage types). Timestamps are `Date`s in
 * UTC; the routes render them as ISO-8601 strings.
 */
export type MemberRole = 'librarian' | 'member';

export interface Member {
  id: string;
  email: string;
  name: string;
  role: MemberRole;
  /** bumped by every password change; tokens carry it as `pwv` and die when it moves */
  passwordVersion: number;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
}

export interface Book {
  id: string;
  isbn: string;
  title: string;
  author: string;
  copies: number;
  /** copies not on loan; 0 <= available <= copies always holds (a CHECK constraint too) */
  available: number;
  createdAt: Date;
  updatedAt: Date;
}

export interface Loan {
  id: string;
  bookId: string;
  memberId: string;
  borrowedAt: Date;
  returnedAt: Date | null;
}

/**
 * The emails the outbox carries: the one list of them. mail/mail-templates.ts has a template for
 * each (it does not compile without one).
 */
export const OUTBOX_KINDS = ['welcome', 'password_changed', 'loan_receipt', 'return_receipt'] as const;
export type OutboxKind = (typeof OUTBOX_KINDS)[number];

/** One email to send; written in the same transaction as the change it reports (issue 6 relays it). */
export interface OutboxMessage {
  kind: OutboxKind;
  recipient: string;
  payload: Record<string, unknown>;
}

/** A page of a cursor-paginated list; `nextCursor` is absent on the last page. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}
