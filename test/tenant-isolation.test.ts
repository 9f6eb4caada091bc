/**
 * Issue "data path", Done-when 4 and the directory outcomes of CONTRACT.md §6: a member token of
 * tenant A used with `X-Tenant-ID: B` → 403; a book id of A fetched as B on the same shard → 404;
 * unknown tenant → 404; readonly → writes 423 (reads 200); suspended → 403.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, registerAndLogin } from './helpers/api.js';
import { createTenant, removeTenant, setTenantStatus, uniqueTenantId } from './helpers/tenants.js';

const shard = 'shard-1';
const a = uniqueTenantId('iso-a');
const b = uniqueTenantId('iso-b');

beforeAll(async () => {
  await createTenant(a, shard);
  await createTenant(b, shard);
});
afterAll(() => {
  removeTenant(a);
  removeTenant(b);
});

describe('tenant isolation', () => {
  it('keeps tokens and ids inside their tenant, even on a shared shard', async () => {
    const ann = await registerAndLogin(a, 'ann@example.com');
    const bob = await registerAndLogin(b, 'bob@example.com');
    const book = await api('POST', '/v1/books', {
      tenant: a,
      token: ann.token,
      body: { isbn: '0306406152', title: 'A only', author: 'A', copies: 1 },
    });
    expect(book.status).toBe(201);
    const consistency = book.headers.get('X-Consistency-Token')!;

    const foreignToken = await api('GET', '/v1/members/me', { tenant: b, token: ann.token });
    expect(foreignToken.status).toBe(403);
    expect(foreignToken.json.code).toBe('tenant_mismatch');
    const foreignWrite = await api('POST', '/v1/loans', {
      tenant: b,
      token: ann.token,
      body: { bookId: book.json.id },
    });
    expect(foreignWrite.status).toBe(403);
    // a token is valid only with its own tenant on public routes too, the answer cached or not
    for (const path of ['/v1/books', `/v1/books/${book.json.id}`]) {
      const foreignRead = await api('GET', path, { tenant: b, token: ann.token });
      expect([path, foreignRead.status, foreignRead.json.code]).toEqual([path, 403, 'tenant_mismatch']);
    }
    expect((await api('GET', '/v1/books', { tenant: a, token: ann.token })).status).toBe(200);

    // same shard, consistency token of the write: B still cannot see A's book
    const asB = await api('GET', `/v1/books/${book.json.id}`, {
      tenant: b,
      headers: { 'X-Consistency-Token': consistency },
    });
    expect(asB.status).toBe(404);
    expect(asB.headers.get('content-type')).toContain('application/problem+json');
    const borrowAsB = await api('POST', '/v1/loans', {
      tenant: b,
      token: bob.token,
      body: { bookId: book.json.id },
    });
    expect(borrowAsB.status).toBe(404);
    const listAsB = await api('GET', '/v1/books', {
      tenant: b,
      headers: { 'X-Consistency-Token': consistency },
    });
    expect(listAsB.json.items).toEqual([]);
    const asA = await api('GET', `/v1/books/${book.json.id}`, {
      tenant: a,
      headers: { 'X-Consistency-Token': consistency },
    });
    expect(asA.status).toBe(200);

    // a loan is its borrower's: read back at its Location with the borrow's token, not by B
    const loan = await api('POST', '/v1/loans', {
      tenant: a,
      token: ann.token,
      body: { bookId: book.json.id },
    });
    expect(loan.status).toBe(201);
    const location = loan.headers.get('Location')!;
    expect(location).toBe(`/v1/loans/${loan.json.id}`);
    const loanToken = loan.headers.get('X-Consistency-Token')!;
    const own = await api('GET', location, {
      tenant: a,
      token: ann.token,
      headers: { 'X-Consistency-Token': loanToken },
    });
    expect([own.status, own.json]).toEqual([200, loan.json]);
    const loanAsB = await api('GET', location, {
      tenant: b,
      token: bob.token,
      headers: { 'X-Consistency-Token': loanToken },
    });
    expect([loanAsB.status, loanAsB.json.code]).toEqual([404, 'loan_not_found']);
  });

  it('answers 404 for an unknown tenant', async () => {
    const r = await api('GET', '/v1/books', { tenant: uniqueTenantId('nobody') });
    expect(r.status).toBe(404);
    expect(r.json.code).toBe('tenant_not_found');
  });

  it('refuses writes of a readonly tenant with 423 and everything of a suspended one with 403', async () => {
    const t = uniqueTenantId('iso-status');
    await createTenant(t, shard);
    try {
      const { token } = await registerAndLogin(t, 'lib@example.com');
      await setTenantStatus(t, 'readonly');
      const write = await api('POST', '/v1/books', {
        tenant: t,
        token,
        body: { isbn: '0306406152', title: 'no', author: 'no', copies: 1 },
      });
      expect(write.status).toBe(423);
      expect(write.json.code).toBe('tenant_readonly');
      const register = await api('POST', '/v1/members', {
        tenant: t,
        body: { email: 'late@example.com', name: 'Late', password: 'password-123' },
      });
      expect(register.status).toBe(423);
      expect((await api('GET', '/v1/books', { tenant: t })).status).toBe(200);
      expect(
        (
          await api('POST', '/v1/auth/login', {
            tenant: t,
            body: { email: 'lib@example.com', password: 'correct horse battery' },
          })
        ).status,
      ).toBe(200);

      await setTenantStatus(t, 'suspended');
      const read = await api('GET', '/v1/books', { tenant: t });
      expect(read.status).toBe(403);
      expect(read.json.code).toBe('tenant_suspended');
      expect(read.headers.get('X-Shard')).toBe(shard);
      expect((await api('GET', '/v1/members/me', { tenant: t, token })).status).toBe(403);
    } finally {
      removeTenant(t);
    }
  });
});
