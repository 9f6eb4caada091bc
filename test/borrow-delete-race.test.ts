/**
 * A borrow racing the delete of its book, against the real master: the borrow reads the book
 * (found), the delete commits, then the borrow's guarded copy-take finds no row. It answers 404
 * `book_not_found`, as a borrow that came after the delete does, never 409 `no_copy_available`
 * for a book whose copies were all free (an outside check: a third of such borrows got the 409).
 * The book-repo's take is guarded twice in one statement (repositories.ts `takeCopyOrStop`):
 * the CHECK `available >= 0` refuses it when no copy is free, the commit guard stops it when the
 * row is gone.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, INSTANCES, registerAndLogin } from './helpers/api.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('bdr');
let librarian = '';
const borrowers: string[] = [];

beforeAll(async () => {
  await createTenant(tenant, 'shard-1');
  librarian = (await registerAndLogin(tenant, 'lib@example.com')).token;
  for (let i = 0; i < 3; i++) borrowers.push((await registerAndLogin(tenant, `m${i}@example.com`)).token);
});
afterAll(() => removeTenant(tenant));

describe('a borrow racing the delete of its book', () => {
  it('answers 404 book_not_found when the delete won, never 409 no_copy_available for free copies', async () => {
    const answers: string[] = [];
    let deletedRounds = 0;
    for (let round = 0; round < 20; round++) {
      const book = await api('POST', '/v1/books', {
        tenant,
        token: librarian,
        body: { isbn: '9780306406157', title: `Race ${round}`, author: 'Ann', copies: 3 },
      });
      expect(book.status, book.text).toBe(201);
      const id = book.json.id as string;
      // both instances, straight: no HAProxy queueing between the requests
      const [deleted, ...borrows] = await Promise.all([
        api('DELETE', `/v1/books/${id}`, { tenant, token: librarian, base: INSTANCES[round % 2] }),
        ...borrowers.map((token, i) =>
          api('POST', '/v1/loans', { tenant, token, body: { bookId: id }, base: INSTANCES[(round + i) % 2] }),
        ),
      ]);
      if (deleted!.status === 204) {
        deletedRounds++;
        for (const b of borrows) answers.push(`${b.status} ${b.json?.code ?? ''}`);
      } else {
        // a borrow committed first: the delete is refused (copies on loan), each borrow had a copy
        expect(deleted!.status, deleted!.text).toBe(409);
        for (const b of borrows) expect([201, 404], b.text).toContain(b.status);
        for (const b of borrows.filter((x) => x.status === 201))
          await api('POST', `/v1/loans/${b.json.id}/return`, {
            tenant,
            token: borrowers[borrows.indexOf(b)],
          });
      }
    }
    expect(deletedRounds).toBeGreaterThan(0);
    // every borrow of a round the delete won: 404 (found no book, before or at its commit)
    expect(answers.filter((a) => a !== '404 book_not_found')).toEqual([]);
  });
});
