/**
 * Drizzle schema of one shard's `shardgate` database (migrations/ is generated from it by
 * `npx drizzle-kit generate`; never edit generated SQL by hand).
 *
 * Multi-tenancy: every table of tenant data carries `tenant_id` (`breaker_probes` is the one table
 * that holds none), and every index that serves a tenant query
 * starts with it — primary keys are (tenant_id, id), so a tenant's rows cluster together and an
 * id of another tenant is simply not found. Ids are app-generated 26-character ULID-shaped
 * strings (src/domain/ids.ts) stored as ASCII binary, so they compare and sort as bytes.
 * Text columns are utf8mb4 (migration 0000 sets the database default). No foreign keys: a book
 * with returned loans may be deleted, and the outbox outlives its subjects.
 *
 * Concurrency invariant: 0 <= books.available <= books.copies (CHECK), taken with a conditional
 * UPDATE in the borrow transaction.
 */
import { sql } from 'drizzle-orm';
import {
  check,
  customType,
  datetime,
  index,
  int,
  json,
  mediumtext,
  mysqlEnum,
  mysqlTable,
  primaryKey,
  uniqueIndex,
  varchar,
} from 'drizzle-orm/mysql-core';

const asciiId = customType<{ data: string; driverData: string }>({
  dataType: () => 'char(26) CHARACTER SET ascii COLLATE ascii_bin',
});
const tenantIdType = customType<{ data: string; driverData: string }>({
  dataType: () => 'varchar(63) CHARACTER SET ascii COLLATE ascii_bin',
});
const at = (name: string) => datetime(name, { mode: 'date', fsp: 3 });
/**
 * A book's author, which `GET /v1/books?author=` compares: utf8mb4_unicode_520_ci ignores case
 * and accents as the database default (utf8mb4_unicode_ci) does, but gives every character outside
 * the Basic Multilingual Plane a weight of its own. Under utf8mb4_unicode_ci they all weigh the
 * same, so `?author=🦄 Grin` found `😀 Grin` and `🐉 Grin`, and `𠮷野` found `𩸽野` (an outside
 * check). Exists on MariaDB ≥ 10.0 and MySQL ≥ 5.6.
 */
const authorType = customType<{ data: string; driverData: string }>({
  dataType: () => 'varchar(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci',
});

/**
 * One row per tenant on its shard: the registration counter that makes "first member" race-safe
 * (member-repo.ts claimFirstRegistration). It counts the registrations made before the first had
 * committed (usually 1), not every registration: later ones only read it.
 */
export const tenantState = mysqlTable('tenant_state', {
  tenantId: tenantIdType('tenant_id').primaryKey(),
  membersRegistered: int('members_registered').notNull().default(0),
  createdAt: at('created_at').notNull(),
});

export const members = mysqlTable(
  'members',
  {
    tenantId: tenantIdType('tenant_id').notNull(),
    id: asciiId('id').notNull(),
    email: varchar('email', { length: 254 }).notNull(),
    name: varchar('name', { length: 200 }).notNull(),
    passwordHash: varchar('password_hash', { length: 255 }).notNull(),
    role: mysqlEnum('role', ['librarian', 'member']).notNull(),
    passwordVersion: int('password_version').notNull().default(1),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'members_pk', columns: [t.tenantId, t.id] }),
    uniqueIndex('members_tenant_email_uq').on(t.tenantId, t.email),
  ],
);

/** the author filter's index, named by the list query as FORCE INDEX (book-repo.ts) */
export const BOOKS_BY_AUTHOR_INDEX = 'books_tenant_author_id_idx';
/** a member's loans, newest first; named by the list query as FORCE INDEX (loan-repo.ts) */
export const LOANS_BY_MEMBER_INDEX = 'loans_tenant_member_id_idx';

export const books = mysqlTable(
  'books',
  {
    tenantId: tenantIdType('tenant_id').notNull(),
    id: asciiId('id').notNull(),
    isbn: varchar('isbn', { length: 17 }).notNull(),
    title: varchar('title', { length: 300 }).notNull(),
    author: authorType('author').notNull(),
    copies: int('copies').notNull(),
    available: int('available').notNull(),
    createdAt: at('created_at').notNull(),
    updatedAt: at('updated_at').notNull(),
  },
  (t) => [
    primaryKey({ name: 'books_pk', columns: [t.tenantId, t.id] }),
    index(BOOKS_BY_AUTHOR_INDEX).on(t.tenantId, t.author, t.id),
    check('books_available_range', sql`${t.available} >= 0 and ${t.available} <= ${t.copies}`),
  ],
);

export const loans = mysqlTable(
  'loans',
  {
    tenantId: tenantIdType('tenant_id').notNull(),
    id: asciiId('id').notNull(),
    bookId: asciiId('book_id').notNull(),
    memberId: asciiId('member_id').notNull(),
    borrowedAt: at('borrowed_at').notNull(),
    returnedAt: at('returned_at'),
  },
  (t) => [
    primaryKey({ name: 'loans_pk', columns: [t.tenantId, t.id] }),
    index(LOANS_BY_MEMBER_INDEX).on(t.tenantId, t.memberId, t.id),
    index('loans_tenant_book_returned_idx').on(t.tenantId, t.bookId, t.returnedAt),
  ],
);

/**
 * Transactional outbox (relayed by the email worker, issue 6). Written in the same transaction as
 * the change it reports. The relay claims due rows with
 * `WHERE sent_at IS NULL AND available_at <= now ORDER BY id … FOR UPDATE SKIP LOCKED` (index
 * `outbox_pending_idx`; the one cross-tenant query, hence not led by tenant_id) and sets `sent_at`
 * after the broker confirmed; when publishing fails the claim rolls back and the rows stay due.
 * `attempts` and `last_error` are not written (they stay 0 and NULL): a mail's attempts and its
 * last error travel in its message's headers, and a dead letter shows them
 * (`shardgate-ctl mail dead-letters`). On MariaDB `json` is LONGTEXT with a JSON_VALID check: `payload` comes back
 * as a string there. The email worker deletes delivered rows after `mail/outbox_retention_hours`
 * (outbox-retention.ts), oldest id first.
 */
export const outbox = mysqlTable(
  'outbox',
  {
    id: asciiId('id').primaryKey(),
    tenantId: tenantIdType('tenant_id').notNull(),
    kind: varchar('kind', { length: 40 }).notNull(),
    recipient: varchar('recipient', { length: 254 }).notNull(),
    payload: json('payload').notNull(),
    createdAt: at('created_at').notNull(),
    availableAt: at('available_at').notNull(),
    attempts: int('attempts').notNull().default(0),
    sentAt: at('sent_at'),
    /**
     * Set by the email worker after the SMTP server accepted the message: the idempotency record
     * that stops a redelivered message (broker redelivery, relay re-publish) from mailing twice.
     */
    deliveredAt: at('delivered_at'),
    /**
     * Set by the email worker just before it publishes the mail to the dead-letter queue (and
     * cleared by `shardgate-ctl mail redrive` before it moves the mail back): the copy of this
     * mail that exists is the one an operator holds there. The worker's lost-mail sweep
     * (lost-mail-sweep.ts) re-publishes rows published long ago and never delivered, except these.
     */
    deadLetteredAt: at('dead_lettered_at'),
    lastError: varchar('last_error', { length: 500 }),
  },
  (t) => [
    index('outbox_pending_idx').on(t.sentAt, t.availableAt, t.id),
    index('outbox_tenant_created_idx').on(t.tenantId, t.createdAt),
    // the lost-mail sweep's range: undelivered, not dead-lettered, published before a moment.
    // Delivered rows (nearly all of a big table) are outside it, so a pass reads only the few
    // rows in flight or lost, never the whole outbox
    index('outbox_undelivered_idx').on(t.deliveredAt, t.deadLetteredAt, t.sentAt),
  ],
);

const idempotencyKeyType = customType<{ data: string; driverData: string }>({
  dataType: () => 'varchar(255) CHARACTER SET ascii COLLATE ascii_bin',
});

/**
 * Idempotency keys of writes (src/domain/idempotency.ts): the row is inserted in the transaction
 * of the write it guards, so it exists exactly when that write committed; `response` (the JSON
 * of the answer) is stored right after the commit. Kept about a day (purged by the API).
 */
export const idempotencyKeys = mysqlTable(
  'idempotency_keys',
  {
    tenantId: tenantIdType('tenant_id').notNull(),
    key: idempotencyKeyType('idem_key').notNull(),
    fingerprint: varchar('fingerprint', { length: 64 }).notNull(),
    createdAt: at('created_at').notNull(),
    response: mediumtext('response'),
    /**
     * the process that claimed the key (`<instance id> <its start time>`, routes/idempotency.ts
     * claimantOf): a repeat that finds no answer yet asks whether that process still runs. NULL
     * on rows written before it was added.
     */
    claimedBy: varchar('claimed_by', { length: 200 }),
  },
  (t) => [
    primaryKey({ name: 'idempotency_keys_pk', columns: [t.tenantId, t.key] }),
    index('idempotency_keys_tenant_created_idx').on(t.tenantId, t.createdAt),
  ],
);

const instanceIdType = customType<{ data: string; driverData: string }>({
  dataType: () => 'varchar(63) CHARACTER SET ascii COLLATE ascii_bin',
});

/**
 * Not tenant data: one row per process (`probe_id`, its instance id) whose master breaker probed
 * this master with a write. A breaker opened by writes that timed out while the server was stuck
 * (a global read lock, a full disk, a semi-sync acknowledgement) closes only once such a write
 * commits (breaker-node-guard.ts); a read answering proves nothing about writes. Moves, tenant
 * removal and the row checks of shardgate-ctl never read it.
 */
export const breakerProbes = mysqlTable('breaker_probes', {
  probeId: instanceIdType('probe_id').primaryKey(),
  probedAt: at('probed_at').notNull(),
});
