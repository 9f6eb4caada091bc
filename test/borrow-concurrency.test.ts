/**
 * Issue "data path", Done-when 2: 50 concurrent borrows of a book with 3 copies → exactly 3 get
 * 201, 47 get 409, and the database agrees (available 0, 3 loans, 3 receipts queued).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, registerAndLogin } from './helpers/api.js';
import { node, rootQuery } from './helpers/shard-db.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';

const tenant = uniqueTenantId('borrow');
const shard = 'shard-2';

beforeAll(async () => {
  await createTenant(tenant, shard);
});
afterAll(() => removeTenant(tenant));

describe('borrowing under concurrency', () => {
  it('lends exactly as many copies as exist', async () => {
    const librarian = await registerAndLogin(tenant, 'librarian@example.com');
    const members = await Promise.all(
      Array.from({ length: 10 }, (_, i) => registerAndLogin(tenant, `member-${i}@example.com`)),
    );
    const created = await api('POST', '/v1/books', {
      tenant,
      token: librarian.token,
      body: { isbn: '978-3-16-148410-0', title: 'Scarce', author: 'Concurrency', copies: 3 },
    });
    expect(created.status).toBe(201);
    const bookId: string = created.json.id;

    const answers = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        api('POST', '/v1/loans', { tenant, token: members[i % members.length]!.token, body: { bookId } }),
      ),
    );
    const statuses = answers.map((a) => a.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(3);
    expect(statuses.filter((s) => s === 409)).toHaveLength(47);
    for (const a of answers.filter((x) => x.status === 409)) {
      expect(a.headers.get('content-type')).toContain('application/problem+json');
      expect(a.json.code).toBe('no_copy_available');
    }

    const master = node(shard, 'master').port;
    const [book] = await rootQuery<{ copies: number; available: number }>(
      master,
      'SELECT copies, available FROM books WHERE tenant_id = ? AND id = ?',
      [tenant, bookId],
    );
    expect(book).toEqual({ copies: 3, available: 0 });
    const [loans] = await rootQuery<{ n: number }>(
      master,
      'SELECT COUNT(*) AS n FROM loans WHERE tenant_id = ? AND book_id = ? AND returned_at IS NULL',
      [tenant, bookId],
    );
    expect(Number(loans?.n)).toBe(3);
    const [receipts] = await rootQuery<{ n: number }>(
      master,
      "SELECT COUNT(*) AS n FROM outbox WHERE tenant_id = ? AND kind = 'loan_receipt'",
      [tenant],
    );
    expect(Number(receipts?.n)).toBe(3);
    const loanIds = new Set(answers.filter((a) => a.status === 201).map((a) => a.json.id));
    expect(loanIds.size).toBe(3);
  });
});
