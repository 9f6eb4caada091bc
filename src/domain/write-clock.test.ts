/**
 * Times a write stores come from the data's clock (`tx.now()`: the database server's in the SQL
 * adapter), never this process's: an outside check under libfaketime found mails of an instance
 * 300 s ahead held back 300 s, and loans returned before they were borrowed.
 */
import { describe, expect, it } from 'vitest';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { createBook, updateBook } from './books.js';
import { borrowBook, endOfLoan, returnLoan } from './loans.js';
import type { Principal } from './member-tokens.js';
import { changePassword, registerMember } from './members.js';

const tenant = { id: 'acme', shardId: 'shard-1' };

async function setup(serverMs: () => number) {
  const data = new MemoryDataAccess({ now: serverMs });
  const passwords = new TestPasswordHasher();
  const registered = await registerMember({ data, passwords }, tenant, {
    email: 'lib@example.com',
    name: 'Lib',
    password: 'correct horse',
  });
  if (!registered.result.ok) throw new Error('registration failed');
  const member = registered.result.value;
  const principal: Principal = { tenantId: tenant.id, memberId: member.id, passwordVersion: 1 };
  return { data, passwords, member, principal };
}

describe('the times a write stores', () => {
  it("are the data's clock, not this process's: members, books, loans and their outbox rows", async () => {
    // the database server's clock, 300 s behind this process's
    let server = Date.now() - 300_000;
    const { data, passwords, member, principal } = await setup(() => server);
    expect(member.createdAt.getTime()).toBe(server);
    expect(data.committed.outbox.at(-1)!.createdAt.getTime()).toBe(server);
    server += 1000;
    const book = await createBook(data, tenant, principal, {
      isbn: '9780306406157',
      title: 'T',
      author: 'A',
      copies: 1,
    });
    if (!book.result.ok) throw new Error('book not created');
    expect(book.result.value.createdAt.getTime()).toBe(server);
    server += 1000;
    const updated = await updateBook(data, tenant, principal, book.result.value.id, { title: 'U' });
    expect(updated.result.ok && updated.result.value.updatedAt.getTime()).toBe(server);
    server += 1000;
    const loan = await borrowBook(data, tenant, principal, book.result.value.id);
    if (!loan.result.ok) throw new Error('not borrowed');
    expect(loan.result.value.borrowedAt.getTime()).toBe(server);
    const receipt = data.committed.outbox.at(-1)!;
    expect([receipt.kind, receipt.createdAt.getTime()]).toEqual(['loan_receipt', server]);
    server += 1000;
    const returned = await returnLoan(data, tenant, principal, loan.result.value.id);
    expect(returned.result.ok && returned.result.value.returnedAt?.getTime()).toBe(server);
    expect(data.committed.outbox.at(-1)!.createdAt.getTime()).toBe(server);
    server += 1000;
    await changePassword({ data, passwords }, tenant, principal, {
      currentPassword: 'correct horse',
      newPassword: 'battery staple',
    });
    const changed = data.committed.outbox.at(-1)!;
    expect([changed.kind, changed.createdAt.getTime(), changed.payload.changedAt]).toEqual([
      'password_changed',
      server,
      new Date(server).toISOString(),
    ]);
  });

  it('never end a loan before it began: a loan borrowed at a time ahead of the return', async () => {
    let server = Date.now();
    const { data, principal } = await setup(() => server);
    const book = await createBook(data, tenant, principal, {
      isbn: '9780306406157',
      title: 'T',
      author: 'A',
      copies: 1,
    });
    if (!book.result.ok) throw new Error('book not created');
    // borrowed while the clock that set its time ran 300 s ahead (an instance's, before the fix,
    // or a master's replaced by one whose clock is right)
    server += 300_000;
    const loan = await borrowBook(data, tenant, principal, book.result.value.id);
    if (!loan.result.ok) throw new Error('not borrowed');
    const borrowedAt = loan.result.value.borrowedAt;
    server -= 298_000;
    const returned = await returnLoan(data, tenant, principal, loan.result.value.id);
    if (!returned.result.ok) throw new Error('not returned');
    expect(returned.result.value.returnedAt).toEqual(borrowedAt);
    const row = data.committed.loans.get(`acme/${loan.result.value.id}`)!;
    expect(row.returnedAt!.getTime()).toBeGreaterThanOrEqual(row.borrowedAt.getTime());
    const mail = data.committed.outbox.at(-1)!;
    expect(mail.payload.returnedAt).toBe(borrowedAt.toISOString());
    // the return's mail is due at once, by the clock it is compared with
    expect(mail.createdAt.getTime()).toBe(server);
  });

  it("never move a book's updated_at back: a PATCH or a borrow holding a time read before the row lock", async () => {
    let server = Date.now();
    const { data, principal } = await setup(() => server);
    const created = await createBook(data, tenant, principal, {
      isbn: '9780306406157',
      title: 'T',
      author: 'A',
      copies: 2,
    });
    if (!created.result.ok) throw new Error('book not created');
    const id = created.result.value.id;
    server += 5_000;
    await updateBook(data, tenant, principal, id, { title: 'U' });
    const changedAt = server;
    // the PATCH that waited for that one read the time before it (as its first round trip does)
    server -= 2_000;
    const patched = await updateBook(data, tenant, principal, id, { title: 'V' });
    expect(patched.result.ok && patched.result.value.updatedAt.getTime()).toBe(changedAt);
    const loan = await borrowBook(data, tenant, principal, id);
    if (!loan.result.ok) throw new Error('not borrowed');
    expect(data.committed.books.get(`acme/${id}`)!.updatedAt.getTime()).toBe(changedAt);
    server += 10_000;
    await returnLoan(data, tenant, principal, loan.result.value.id);
    expect(data.committed.books.get(`acme/${id}`)!.updatedAt.getTime()).toBe(server);
  });

  it('endOfLoan: the later of the return and the borrow', () => {
    const t = new Date('2026-01-01T00:00:00Z');
    expect(endOfLoan(t, new Date(t.getTime() + 1))).toEqual(new Date(t.getTime() + 1));
    expect(endOfLoan(t, new Date(t.getTime() - 298_000))).toEqual(t);
  });
});
