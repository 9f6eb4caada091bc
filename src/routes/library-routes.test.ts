import { describe, expect, it, vi } from 'vitest';
import { createApp, type Services } from '../app.js';
import type { PreReadBody } from '../app-env.js';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { ReadCache } from '../cache/read-cache.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { encodeCursor, listScope } from '../domain/cursor.js';
import { PasswordWorkBusyError } from '../domain/password-hasher.js';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { SealedConsistencyTokens } from '../routing/consistency-token.js';
import { WritesInFlight } from '../routing/writes-in-flight.js';
import { createMemoryServices, TEST_SECRET } from '../testing/memory-services.js';

const shard = (port: number) =>
  JSON.stringify({
    master: { host: '127.0.0.1', port },
    replicas: [{ host: '127.0.0.1', port: port + 1, weight: 1 }],
  });

function setup(overrides: Partial<Omit<Services, 'config'>> = {}) {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': shard(3316),
      'shards/shard-2': shard(3326),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
      'tenants/globex': '{"shard":"shard-1","status":"active"}',
      'tenants/far': '{"shard":"shard-2","status":"active"}',
      'tenants/frozen': '{"shard":"shard-1","status":"readonly"}',
      'tenants/gone': '{"shard":"shard-1","status":"suspended"}',
    },
  });
  const services = createMemoryServices({ config, ...overrides });
  const app = createApp(services);
  const data = services.data as MemoryDataAccess;
  const call = async (
    method: string,
    path: string,
    {
      tenant = 'acme',
      body,
      token,
      headers = {},
    }: { tenant?: string | null; body?: unknown; token?: string; headers?: Record<string, string> } = {},
  ) => {
    const h: Record<string, string> = { ...headers };
    if (tenant !== null) h['X-Tenant-ID'] = tenant;
    if (token) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h['Content-Type'] = 'application/json';
    const res = await app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    return { res, status: res.status, json: text ? JSON.parse(text) : undefined };
  };
  const register = async (tenant: string, email: string, password = 'correct horse') => {
    const r = await call('POST', '/v1/members', {
      tenant,
      body: { email, name: email.split('@')[0], password },
    });
    const l = await call('POST', '/v1/auth/login', { tenant, body: { email, password } });
    return { member: r.json, token: l.json?.token as string, registered: r };
  };
  return { app, config, data, call, register };
}

describe('library routes (memory adapters)', () => {
  it('registers the first member as librarian, later ones as members, and rejects a duplicate email', async () => {
    const { call, register, data } = setup();
    const a = await register('acme', 'ann@example.com');
    expect(a.registered.status).toBe(201);
    expect(a.member.role).toBe('librarian');
    expect(a.registered.res.headers.get('X-Consistency-Token')).toMatch(/^v2\./);
    expect(a.registered.res.headers.get('X-Shard')).toBe('shard-1');
    const b = await register('acme', 'bob@example.com');
    expect(b.member.role).toBe('member');
    const dup = await call('POST', '/v1/members', {
      body: { email: 'ANN@example.com', name: 'Ann 2', password: 'whatever123' },
    });
    expect(dup.status).toBe(409);
    expect(dup.json.code).toBe('email_taken');
    // a refused write answers a token too (CONTRACT §6): of the position the refusal saw, which
    // holds bob's registration, the write before it
    const refusedToken = dup.res.headers.get('X-Consistency-Token');
    expect(refusedToken).toMatch(/^v2\./);
    // (sealed with a random IV: the same position is another token text each time)
    const tokens = new SealedConsistencyTokens({ secret: TEST_SECRET });
    const refusedAt = await tokens.verify(refusedToken!, 'acme');
    expect(refusedAt.ok && refusedAt.position).toBeTruthy();
    expect(refusedAt).toEqual(
      await tokens.verify(b.registered.res.headers.get('X-Consistency-Token')!, 'acme'),
    );
    expect(data.committed.outbox.filter((o) => o.kind === 'welcome')).toHaveLength(2);
    // first member of another tenant on the same shard is that tenant's librarian
    expect((await register('globex', 'ann@example.com')).member.role).toBe('librarian');
  });

  it('logs in, answers /me, and gives the same 401 for unknown email and wrong password', async () => {
    const { app, call, register } = setup();
    const { token } = await register('acme', 'ann@example.com');
    expect(token).toBeTruthy();
    const me = await call('GET', '/v1/members/me', { token });
    expect(me.status).toBe(200);
    expect(me.json.email).toBe('ann@example.com');
    // the token check reads the member's current row on the master, and that row is the answer
    expect(me.res.headers.get('X-Read-From')).toBe('master');
    // a member's own data is never kept by a browser or a shared cache
    expect(me.res.headers.get('Cache-Control')).toBe('no-store');
    // the scheme name is case-insensitive (RFC 9110 §11.1)
    const lower = await app.request('/v1/members/me', {
      headers: { 'X-Tenant-ID': 'acme', Authorization: `bearer ${token}` },
    });
    expect(lower.status).toBe(200);
    const wrong = await call('POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'nope-nope' },
    });
    const unknown = await call('POST', '/v1/auth/login', {
      body: { email: 'zed@example.com', password: 'nope-nope' },
    });
    expect(wrong.status).toBe(401);
    expect(unknown.status).toBe(401);
    expect({ ...wrong.json, requestId: '' }).toEqual({ ...unknown.json, requestId: '' });
  });

  it('takes a password in any Unicode normal form: registered composed, it logs in decomposed or full-width', async () => {
    const { call, register } = setup();
    await register('acme', 'ann@example.com', 'caf\u00e9 horse 1');
    for (const password of ['cafe\u0301 horse 1', 'caf\u00e9 horse \uff11']) {
      const r = await call('POST', '/v1/auth/login', { body: { email: 'ann@example.com', password } });
      expect(r.status, JSON.stringify(password)).toBe(200);
    }
    const wrong = await call('POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'cafe horse 1' },
    });
    expect(wrong.status).toBe(401);
    // its length is counted as it is hashed: 8 code units sent, 4 characters in NFKC
    const short = await call('POST', '/v1/members', {
      body: { email: 'bob@example.com', name: 'Bob', password: 'e\u0301'.repeat(4) },
    });
    expect(short.status).toBe(400);
    expect(short.json.errors).toEqual([{ field: 'body.password', message: 'must be at least 8 characters' }]);
    // and in characters, not UTF-16 units: four emoji are four
    const emoji = await call('POST', '/v1/members', {
      body: { email: 'bob@example.com', name: 'Bob', password: '\u{1F600}'.repeat(4) },
    });
    expect(emoji.status).toBe(400);
    // nor fewer than 8 as typed: NFKC makes some characters longer ("\ufdfa" is 18 in NFKC)
    for (const password of ['\ufdfa', '\u337f\u337f', '\ufb03'.repeat(3)]) {
      const expanded = await call('POST', '/v1/members', {
        body: { email: 'bob@example.com', name: 'Bob', password },
      });
      expect([password, expanded.status, expanded.json.errors]).toEqual([
        password,
        400,
        [{ field: 'body.password', message: 'must be at least 8 characters' }],
      ]);
    }
  });

  it('a registration names its own email limit, 253, however long the address (255 was told 254)', async () => {
    const { call } = setup();
    for (const length of [254, 255, 300]) {
      const email = `${'a'.repeat(60)}@${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(length - 60 - 1 - 122 - 4)}.com`;
      expect(email.length).toBe(length);
      const r = await call('POST', '/v1/members', {
        body: { email, name: 'Ann', password: 'long enough pw' },
      });
      expect([length, r.status, r.json.errors]).toEqual([
        length,
        400,
        [{ field: 'body.email', message: 'must be at most 253 characters' }],
      ]);
    }
  });

  it('change-password revokes older tokens and the old password', async () => {
    const { call, register, data } = setup();
    const { token } = await register('acme', 'ann@example.com', 'old-password');
    const bad = await call('POST', '/v1/auth/change-password', {
      token,
      body: { currentPassword: 'not-it', newPassword: 'new-password' },
    });
    expect(bad.status).toBe(403);
    const ok = await call('POST', '/v1/auth/change-password', {
      token,
      body: { currentPassword: 'old-password', newPassword: 'new-password' },
    });
    expect(ok.status).toBe(204);
    expect(ok.res.headers.get('X-Consistency-Token')).toBeTruthy();
    expect((await call('GET', '/v1/members/me', { token })).status).toBe(401);
    const oldLogin = await call('POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'old-password' },
    });
    expect(oldLogin.status).toBe(401);
    const newLogin = await call('POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'new-password' },
    });
    expect(newLogin.status).toBe(200);
    expect((await call('GET', '/v1/members/me', { token: newLogin.json.token })).status).toBe(200);
    expect(data.committed.outbox.map((o) => o.kind)).toEqual(['welcome', 'password_changed']);
  });

  it("GET /members/me: a revoked token's concurrent miss does not answer a valid token's caller", async () => {
    const { call, register, data } = setup();
    const { token: old } = await register('acme', 'ann@example.com', 'old-password');
    const changed = await call('POST', '/v1/auth/change-password', {
      token: old,
      body: { currentPassword: 'old-password', newPassword: 'new-password' },
    });
    expect(changed.status).toBe(204);
    const login = await call('POST', '/v1/auth/login', {
      body: { email: 'ann@example.com', password: 'new-password' },
    });
    // slow reads, so the two misses below overlap; the revoked token's starts first
    const read = data.read.bind(data);
    data.read = (async (...args: Parameters<typeof read>) => {
      await new Promise((r) => setTimeout(r, 20));
      return read(...args);
    }) as typeof data.read;
    const [revoked, valid] = await Promise.all([
      call('GET', '/v1/members/me', { token: old }),
      call('GET', '/v1/members/me', { token: login.json.token }),
    ]);
    expect([revoked.status, valid.status, valid.json.email]).toEqual([401, 200, 'ann@example.com']);
  });

  it('GET /members/me: a row read from a replica (the master down) answers but is not cached', async () => {
    const { call, register, data } = setup();
    const { token } = await register('acme', 'ann@example.com');
    const read = data.read.bind(data);
    let from: 'replica' | undefined = 'replica';
    data.read = (async (...args: Parameters<typeof read>) => {
      const out = await read(...args);
      return from ? { ...out, readFrom: from } : out;
    }) as typeof data.read;
    const first = await call('GET', '/v1/members/me', { token });
    const second = await call('GET', '/v1/members/me', { token });
    expect([first.status, first.res.headers.get('X-Cache'), second.res.headers.get('X-Cache')]).toEqual([
      200,
      'MISS',
      'MISS',
    ]);
    from = undefined;
    await call('GET', '/v1/members/me', { token });
    expect((await call('GET', '/v1/members/me', { token })).res.headers.get('X-Cache')).toBe('HIT');
  });

  it('books: librarian-only writes, public reads, pagination by cursor, author filter', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const mem = await register('acme', 'mem@example.com');
    const book = { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 2 };
    expect((await call('POST', '/v1/books', { token: mem.token, body: book })).status).toBe(403);
    expect((await call('POST', '/v1/books', { body: book })).status).toBe(401);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await call('POST', '/v1/books', {
        token: lib.token,
        body: { ...book, title: `T${i}`, author: i % 2 ? 'Odd' : 'Even' },
      });
      expect(r.status).toBe(201);
      ids.push(r.json.id);
    }
    // a new book says where it lives, and the OpenAPI document says it does
    const located = await call('POST', '/v1/books', { token: lib.token, body: book });
    expect(located.res.headers.get('Location')).toBe(`/v1/books/${located.json.id}`);
    expect((await call('GET', located.res.headers.get('Location')!)).json.id).toBe(located.json.id);
    await call('DELETE', `/v1/books/${located.json.id}`, { token: lib.token });
    const one = await call('GET', `/v1/books/${ids[0]}`, { tenant: 'acme' });
    expect(one.status).toBe(200);
    expect(one.json.available).toBe(2);
    // pages go in id order, which is creation order, also for books made within one millisecond
    // (the memory adapter makes five in one often enough; ids.ts is monotonic per process)
    const inIdOrder = [...ids].sort();
    expect(inIdOrder).toEqual(ids);
    const p1 = await call('GET', '/v1/books?limit=2');
    expect(p1.json.items.map((b: { id: string }) => b.id)).toEqual(inIdOrder.slice(0, 2));
    const p2 = await call('GET', `/v1/books?limit=2&cursor=${p1.json.nextCursor}`);
    expect(p2.json.items.map((b: { id: string }) => b.id)).toEqual(inIdOrder.slice(2, 4));
    const p3 = await call('GET', `/v1/books?limit=2&cursor=${p2.json.nextCursor}`);
    expect(p3.json.items).toHaveLength(1);
    expect(p3.json.nextCursor).toBeNull();
    const odd = await call('GET', '/v1/books?author=Odd');
    expect(odd.json.items).toHaveLength(2);
    const patched = await call('PATCH', `/v1/books/${ids[0]}`, { token: lib.token, body: { copies: 5 } });
    expect(patched.status).toBe(200);
    expect(patched.json).toMatchObject({ copies: 5, available: 5 });
    expect((await call('DELETE', `/v1/books/${ids[1]}`, { token: lib.token })).status).toBe(204);
    expect((await call('GET', `/v1/books/${ids[1]}`)).status).toBe(404);
  });

  it('loans: borrow until no copy is free, return once, list own loans', async () => {
    const { call, register, data } = setup();
    const lib = await register('acme', 'lib@example.com');
    const mem = await register('acme', 'mem@example.com');
    const created = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '0306406152', title: 'T', author: 'A', copies: 1 },
    });
    const bookId = created.json.id;
    const loan = await call('POST', '/v1/loans', { token: mem.token, body: { bookId } });
    expect(loan.status).toBe(201);
    expect(loan.json.status).toBe('active');
    const none = await call('POST', '/v1/loans', { token: lib.token, body: { bookId } });
    expect(none.status).toBe(409);
    expect(none.json.code).toBe('no_copy_available');
    // with the refusal's token, a read sees the loan that holds the copy
    const seen = await call('GET', `/v1/books/${bookId}`, {
      headers: { 'X-Consistency-Token': none.res.headers.get('X-Consistency-Token') ?? '' },
    });
    expect([seen.status, seen.json.available, seen.res.headers.get('X-Read-From')]).toEqual([
      200,
      0,
      'master',
    ]);
    expect(none.json.detail).toBe('every copy of this book is on loan');
    // a book with no copies at all says so, not that they are all lent out
    const empty = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '0306406152', title: 'None', author: 'A', copies: 0 },
    });
    const noCopies = await call('POST', '/v1/loans', { token: mem.token, body: { bookId: empty.json.id } });
    expect([noCopies.status, noCopies.json.code, noCopies.json.detail]).toEqual([
      409,
      'no_copy_available',
      'this book has no copies to lend (copies is 0)',
    ]);
    expect(
      (await call('POST', '/v1/loans', { token: lib.token, body: { bookId: '01JD5X8Q9W6ZV1N2M3K4H5G6F7' } }))
        .status,
    ).toBe(404);
    expect((await call('DELETE', `/v1/books/${bookId}`, { token: lib.token })).status).toBe(409);
    // someone else's loan does not exist for the librarian
    expect((await call('POST', `/v1/loans/${loan.json.id}/return`, { token: lib.token })).status).toBe(404);
    const back = await call('POST', `/v1/loans/${loan.json.id}/return`, { token: mem.token });
    expect(back.status).toBe(200);
    expect(back.json.status).toBe('returned');
    expect((await call('POST', `/v1/loans/${loan.json.id}/return`, { token: mem.token })).status).toBe(409);
    const mine = await call('GET', '/v1/loans', { token: mem.token });
    expect(mine.json.items).toHaveLength(1);
    expect((await call('GET', '/v1/loans', { token: lib.token })).json.items).toHaveLength(0);
    expect(data.committed.books.values().next().value?.available).toBe(1);
    expect(data.committed.outbox.map((o) => o.kind).filter((k) => k !== 'welcome')).toEqual([
      'loan_receipt',
      'return_receipt',
    ]);
  });

  it('isolates tenants: foreign token 403, foreign id 404, unknown 404, readonly 423, suspended 403', async () => {
    const { call, register } = setup();
    const a = await register('acme', 'ann@example.com');
    await register('globex', 'gus@example.com');
    const book = await call('POST', '/v1/books', {
      token: a.token,
      body: { isbn: '0306406152', title: 'T', author: 'A', copies: 1 },
    });
    expect((await call('GET', '/v1/members/me', { tenant: 'globex', token: a.token })).status).toBe(403);
    expect((await call('GET', `/v1/books/${book.json.id}`, { tenant: 'globex' })).status).toBe(404);
    const unknown = await call('GET', '/v1/books', { tenant: 'nope' });
    expect(unknown.status).toBe(404);
    expect(unknown.json.code).toBe('tenant_not_found');
    const ro = await call('POST', '/v1/members', {
      tenant: 'frozen',
      body: { email: 'x@example.com', name: 'x', password: 'password1' },
    });
    expect(ro.status).toBe(423);
    // an operator's readonly: no hint to retry soon
    expect(ro.res.headers.get('Retry-After')).toBeNull();
    expect(ro.json.detail).toBe('tenant "frozen" is read-only');
    expect((await call('GET', '/v1/books', { tenant: 'frozen' })).status).toBe(200);
    expect((await call('GET', '/v1/books', { tenant: 'gone' })).status).toBe(403);
    const noHeader = await call('GET', '/v1/books', { tenant: null });
    expect(noHeader.status).toBe(400);
    expect(noHeader.json.detail).toContain('header.X-Tenant-ID');
  });

  it('a write whose tenant a move made readonly, or switched, while it ran is not committed; an admitted one holds the revision report until its request ended', async () => {
    // a registration passes requireWritable, then waits for its password hash (seconds under
    // load): meanwhile the tenant turns readonly, or its entry names another shard
    let arrived = () => {};
    let proceed = () => {};
    const hasher = new TestPasswordHasher();
    const passwords = {
      verify: hasher.verify.bind(hasher),
      verifyDummy: hasher.verifyDummy.bind(hasher),
      hash: async (password: string) => {
        arrived();
        await new Promise<void>((r) => {
          proceed = r;
        });
        return hasher.hash(password);
      },
    };
    const holds: { tenant: string; revision: number }[] = [];
    const writesInFlight = new (class extends WritesInFlight {
      override hold(tenant: { id: string; shardId: string }, revision: number) {
        holds.push({ tenant: tenant.id, revision });
        return super.hold(tenant, revision);
      }
    })();
    const { call, config, data } = setup({ passwords, writesInFlight });
    const register = (email: string) =>
      call('POST', '/v1/members', { body: { email, name: 'n', password: 'password1' } });
    const during = async (email: string, change: () => void) => {
      config.put('tenants/acme', '{"shard":"shard-1","status":"active"}');
      config.delete('moving/acme');
      const hashing = new Promise<void>((r) => {
        arrived = r;
      });
      const answer = register(email);
      await hashing;
      change();
      proceed();
      return answer;
    };

    const readonly = await during('a@example.com', () => {
      config.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
      config.put('moving/acme', JSON.stringify({ since: new Date().toISOString() }));
    });
    expect(readonly.status).toBe(423);
    expect(readonly.json.code).toBe('tenant_readonly');
    expect(readonly.res.headers.get('Retry-After')).toBe('1');

    // switched, still readonly there (the move's last step is to come): the new entry's 423
    const switchedReadonly = await during('b@example.com', () => {
      config.put('tenants/acme', '{"shard":"shard-2","status":"readonly"}');
    });
    expect(switchedReadonly.status).toBe(423);
    expect(switchedReadonly.json.code).toBe('tenant_readonly');
    expect([...data.committed.members.values()].filter((m) => m.tenantId === 'acme')).toEqual([]);
    expect(data.committed.outbox.filter((o) => o.tenantId === 'acme')).toEqual([]);
    expect(holds).toEqual([]);

    // switched and active there: written there, as a new request would be (its token names it)
    const switched = await during('b@example.com', () => {
      config.put('tenants/acme', '{"shard":"shard-2","status":"active"}');
    });
    expect(switched.status).toBe(201);
    expect(switched.res.headers.get('X-Shard')).toBe('shard-2');
    const token = switched.res.headers.get('X-Consistency-Token') ?? '';
    const verdict = await new SealedConsistencyTokens({ secret: TEST_SECRET }).verify(token, 'acme');
    expect(verdict.ok && verdict.position?.shardId).toBe('shard-2');
    expect(holds).toEqual([{ tenant: 'acme', revision: config.current().revision }]);
    holds.length = 0;

    // admitted: held (under the revision it was checked by) while its request ran, then released
    let revision = -1;
    const admitted = await during('c@example.com', () => {
      revision = config.current().revision;
    });
    expect(admitted.status).toBe(201);
    expect(holds).toEqual([{ tenant: 'acme', revision }]);
    expect(writesInFlight.size).toBe(0);
    expect([...data.committed.members.values()].filter((m) => m.tenantId === 'acme')).toHaveLength(2);
  });

  it('a write to a tenant a move made readonly (moving/<id>) answers 423 with Retry-After; a stopped move, without', async () => {
    const { call, config } = setup();
    const write = () =>
      call('POST', '/v1/members', {
        tenant: 'frozen',
        body: { email: 'y@example.com', name: 'y', password: 'password1' },
      });
    config.put('moving/frozen', JSON.stringify({ since: new Date().toISOString() }));
    const moving = await write();
    expect(moving.status).toBe(423);
    expect(moving.json.code).toBe('tenant_readonly');
    expect(moving.res.headers.get('Retry-After')).toBe('1');
    expect(moving.json.detail).toBe(
      'tenant "frozen" is read-only while it moves to another shard; writes resume within seconds',
    );
    // a move that made it readonly over a minute ago was stopped: no promise of a quick retry
    config.put('moving/frozen', JSON.stringify({ since: new Date(Date.now() - 61_000).toISOString() }));
    const stopped = await write();
    expect(stopped.status).toBe(423);
    expect(stopped.res.headers.get('Retry-After')).toBeNull();
    // nor one dated years ahead (a clock far off, or a hand edit)
    config.put('moving/frozen', JSON.stringify({ since: '2099-01-01T00:00:00Z' }));
    expect((await write()).res.headers.get('Retry-After')).toBeNull();
    // an invalid mark is rejected like any invalid value: not a date and time, or only a number
    for (const since of ['yesterday', '1', '2026-12-02']) {
      config.put('moving/acme', JSON.stringify({ since }));
      expect(
        config.status().rejected.map((r) => r.key),
        since,
      ).toContain('moving/acme');
    }
  });

  it('consistency tokens: valid → read with position; forged → 400; other shard or tenant → no floor', async () => {
    const { call, register } = setup();
    const a = await register('acme', 'ann@example.com');
    const token = a.registered.res.headers.get('X-Consistency-Token')!;
    const me = await call('GET', '/v1/members/me', {
      token: a.token,
      headers: { 'X-Consistency-Token': token },
    });
    expect(me.status).toBe(200);
    expect(me.res.headers.get('X-Read-From')).toBe('master');
    // two characters in the middle of the MAC replaced: never the token itself
    const at = token.length - 12;
    const forged = `${token.slice(0, at)}${token.slice(at, at + 2) === 'AA' ? 'BB' : 'AA'}${token.slice(at + 2)}`;
    expect(forged).not.toBe(token);
    const bad = await call('GET', '/v1/books', { headers: { 'X-Consistency-Token': forged } });
    expect(bad.status).toBe(400);
    expect(bad.json.code).toBe('invalid_consistency_token');
    const garbage = await call('GET', '/v1/books', { headers: { 'X-Consistency-Token': 'hello' } });
    expect(garbage.json.code).toBe('invalid_consistency_token');
    // an empty header is no token, not a forged one
    const empty = await call('GET', '/v1/books', { headers: { 'X-Consistency-Token': '' } });
    expect(empty.status).toBe(200);
    const tokens = new SealedConsistencyTokens({ secret: TEST_SECRET });
    const other = await tokens.sign({ shardId: 'shard-2', flavour: 'mariadb', gtid: '0-1-1' }, 'acme');
    // of another shard: no floor (the memory data access reads from a "replica" without one)
    const mismatch = await call('GET', '/v1/books', { headers: { 'X-Consistency-Token': other } });
    expect(mismatch.status).toBe(200);
    expect(mismatch.res.headers.get('X-Read-From')).toBe('replica');
    const shard1 = { shardId: 'shard-1', flavour: 'mariadb', gtid: '0-1-1' } as const;
    const own = await call('GET', '/v1/books', {
      headers: { 'X-Consistency-Token': await tokens.sign(shard1, 'acme') },
    });
    expect(own.res.headers.get('X-Read-From')).toBe('master');
    // of another tenant of the same shard: no floor either, and no 400 (pages of their own: no
    // cache entry an earlier read left)
    const foreign = await call('GET', '/v1/books?limit=3', {
      headers: { 'X-Consistency-Token': await tokens.sign(shard1, 'globex') },
    });
    expect([foreign.status, foreign.res.headers.get('X-Read-From')]).toEqual([200, 'replica']);
    // the tokens a write answers are bound to its tenant
    await register('globex', 'gil@example.com');
    const asGlobex = await call('GET', '/v1/books?limit=4', {
      tenant: 'globex',
      headers: { 'X-Consistency-Token': token },
    });
    expect([asGlobex.status, asGlobex.res.headers.get('X-Read-From')]).toEqual([200, 'replica']);
    // a v1 token (issued before v2, still held by clients) is still a floor
    const v1 = 'v1.eyJzIjoic2hhcmQtMSIsImYiOiJtYXJpYWRiIiwiZyI6IjAtMS0xIn0';
    const v1Mac = Buffer.from(
      await webCryptoDerivedMac({ secret: TEST_SECRET, label: 'shardgate/consistency-token/v1' }).sign(
        new TextEncoder().encode(v1),
      ),
    ).toString('base64url');
    const legacy = await call('GET', '/v1/books?limit=5', {
      headers: { 'X-Consistency-Token': `${v1}.${v1Mac}` },
    });
    expect([legacy.status, legacy.res.headers.get('X-Read-From')]).toEqual([200, 'master']);
  });

  it('rejects a cursor it did not make, naming query.cursor', async () => {
    const { call } = setup();
    const scope = listScope.books('acme', undefined);
    for (const cursor of ['abc', '!!!', encodeCursor('not-an-id', scope), btoa('{"id":"x","y":1}')]) {
      const r = await call('GET', `/v1/books?cursor=${encodeURIComponent(cursor)}`);
      expect(r.status).toBe(400);
      expect(r.json.detail).toContain('query.cursor');
    }
  });

  it('refuses a cursor of another tenant, filter or list instead of walking on from it', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    await register('globex', 'gil@example.com');
    for (let i = 0; i < 3; i++)
      await call('POST', '/v1/books', {
        token: lib.token,
        body: { isbn: '0306406152', title: `T${i}`, author: 'Bob', copies: 1 },
      });
    const first = await call('GET', '/v1/books?limit=1&author=Bob');
    const cursor = encodeURIComponent(first.json.nextCursor);
    // the same list: the next page, also with the filter spelled in another case
    expect((await call('GET', `/v1/books?limit=1&author=bob&cursor=${cursor}`)).status).toBe(200);
    for (const [tenant, path, token] of [
      ['acme', `/v1/books?cursor=${cursor}`, undefined],
      ['acme', `/v1/books?author=Ann&cursor=${cursor}`, undefined],
      ['globex', `/v1/books?author=Bob&cursor=${cursor}`, undefined],
      ['acme', `/v1/loans?cursor=${cursor}`, lib.token],
    ] as const) {
      const r = await call('GET', path, { tenant, token });
      expect([tenant, path, r.status, r.json.errors]).toEqual([
        tenant,
        path,
        400,
        [{ field: 'query.cursor', message: 'a cursor of another list or filter: start again without it' }],
      ]);
    }
  });

  it('answers malformed bodies with problem+json, never 5xx, and writes nothing', async () => {
    const { call, data } = setup();
    const cases: [string, number][] = [
      ['{"email":', 400],
      ['[]', 400],
      [JSON.stringify({ email: 'a@example.com', name: 'A', password: 'password-1', role: 'librarian' }), 400],
      [JSON.stringify({ email: 'a@example.com', name: 'x'.repeat(20_000), password: 'password-1' }), 413],
    ];
    for (const [raw, status] of cases) {
      const r = await call('POST', '/v1/members', { body: raw });
      expect(r.status).toBe(status);
      expect(r.res.headers.get('content-type')).toContain('application/problem+json');
      expect(typeof r.json.code).toBe('string');
    }
    expect(data.committed.members.size).toBe(0);
  });

  it('refuses a body that is not UTF-8 read through the Fetch API too (no runtime pre-read), and drops a leading BOM', async () => {
    const { app } = setup();
    const send = (bytes: Uint8Array) =>
      app.request('/v1/members', {
        method: 'POST',
        headers: { 'X-Tenant-ID': 'acme', 'Content-Type': 'application/json' },
        body: bytes,
      });
    const encode = (s: string) => new TextEncoder().encode(s);
    const body = (name: string) =>
      `{"email":"u${name.length}@example.com","name":"${name}","password":"password1"}`;
    // before: 201, the name stored as `Ann\ufffd` (the Fetch API's text() replaces such bytes)
    const [head, tail] = body('Ann#').split('#') as [string, string];
    const bad = await send(new Uint8Array([...encode(head), 0xff, ...encode(tail)]));
    const problem = (await bad.json()) as { code: string; errors: unknown };
    expect([bad.status, problem.code, problem.errors]).toEqual([
      400,
      'bad_request',
      [{ field: 'body', message: 'not valid UTF-8' }],
    ]);
    const bom = await send(new Uint8Array([0xef, 0xbb, 0xbf, ...encode(body('Bea'))]));
    expect([bom.status, ((await bom.json()) as { name: string }).name]).toEqual([201, 'Bea']);
  });

  it('names an empty JSON body as empty, not as malformed', async () => {
    const { call } = setup();
    for (const raw of ['', '  \n']) {
      const r = await call('POST', '/v1/members', { body: raw });
      expect([r.status, r.json.code, r.json.title, r.json.detail, r.json.errors]).toEqual([
        400,
        'bad_request',
        'Bad request',
        'body: the body is empty: send a JSON object',
        [{ field: 'body', message: 'the body is empty: send a JSON object' }],
      ]);
    }
  });

  it('takes a body the runtime already read, with its verdict on the size, over the Fetch body', async () => {
    let body: PreReadBody | undefined;
    const { call, data } = setup({ preReadBody: () => body });
    const member = { email: 'pre@example.com', name: 'Pre', password: 'password-1' };
    // what the Fetch body says is ignored once the runtime read the body
    body = { text: JSON.stringify(member) };
    expect((await call('POST', '/v1/members', { body: '{"not":"this"}' })).status).toBe(201);
    body = { text: '{"email":' };
    const malformed = await call('POST', '/v1/members', { body: JSON.stringify(member) });
    expect([malformed.status, malformed.json.code]).toEqual([400, 'bad_request']);
    expect(malformed.json.errors).toEqual([{ field: 'body', message: 'Malformed JSON in request body' }]);
    // one title for one type, whatever made the body unreadable (RFC 9457 §3.1.3); before, the
    // title was the cause here, and bytes that are not UTF-8 were a validation_failed
    body = { notUtf8: true };
    const notUtf8 = await call('POST', '/v1/members', { body: JSON.stringify(member) });
    expect([
      malformed.json.title,
      notUtf8.status,
      notUtf8.json.code,
      notUtf8.json.title,
      notUtf8.json.errors,
    ]).toEqual([
      'Bad request',
      400,
      'bad_request',
      'Bad request',
      [{ field: 'body', message: 'not valid UTF-8' }],
    ]);
    body = { tooLarge: true };
    const big = await call('POST', '/v1/members', {
      body: JSON.stringify({ ...member, email: 'b@example.com' }),
    });
    expect(big.status).toBe(413);
    expect(big.json.code).toBe('payload_too_large');
    // an answer of /v1 like any other: the tenant's shard, and not for a cache to keep
    expect(big.res.headers.get('X-Shard')).toBe('shard-1');
    expect(big.res.headers.get('Cache-Control')).toBe('no-store');
    // the runtime did not read this one: the app reads the Fetch body, with its own limit
    body = undefined;
    const own = await call('POST', '/v1/members', { body: { ...member, email: 'own@example.com' } });
    expect(own.status).toBe(201);
    expect(data.committed.members.size).toBe(2);
  });

  it('reads the headers of a GET through the runtime, never through a Fetch Headers, and validates path and query the same', async () => {
    // a Request that counts reads of its Fetch Headers and carries a plain copy of them, which the
    // runtime's header reader (Services.requestHeader) answers from, as the Node entry does
    class Watched extends Request {
      reads = 0;
      readonly plain: Record<string, string>;
      constructor(url: string, headers: Record<string, string>) {
        super(url, { headers });
        this.plain = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
        const fetchHeaders = Object.getOwnPropertyDescriptor(Request.prototype, 'headers')?.get;
        Object.defineProperty(this, 'headers', {
          get: () => {
            this.reads++;
            return fetchHeaders?.call(this);
          },
        });
      }
    }
    const { app, call, register } = setup({
      requestHeader: (c, name) => {
        const raw = c.req.raw;
        return raw instanceof Watched ? raw.plain[name.toLowerCase()] : c.req.header(name);
      },
    });
    const lib = await register('acme', 'lib@example.com');
    const book = { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 };
    const id = (await call('POST', '/v1/books', { token: lib.token, body: book })).json.id as string;
    const get = async (path: string, headers: Record<string, string> = { 'X-Tenant-ID': 'acme' }) => {
      const req = new Watched(`http://localhost${path}`, headers);
      const res = await app.request(req);
      return {
        status: res.status,
        json: (await res.json()) as Record<string, unknown>,
        reads: req.reads,
        headers: Object.fromEntries(res.headers),
      };
    };
    const first = await get(`/v1/books/${id}`);
    expect(first).toMatchObject({ status: 200, json: { id, title: 'T' }, reads: 0 });
    // every header the request's middleware and route set is on the answer they built
    expect(first.headers).toMatchObject({
      'content-type': 'application/json',
      'x-shard': 'shard-1',
      'x-served-by': 'api-test',
      'x-read-from': expect.any(String),
      'x-cache': expect.any(String),
      'x-request-id': expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(await get('/v1/books?limit=1')).toMatchObject({
      status: 200,
      json: { items: [{ id }] },
      reads: 0,
    });
    // the tenant header really comes through the reader: another tenant does not see the book
    expect(await get(`/v1/books/${id}`, { 'X-Tenant-ID': 'globex' })).toMatchObject({
      status: 404,
      reads: 0,
    });
    expect(await get(`/v1/books/${id}`, {})).toMatchObject({ status: 400, reads: 0 });
    // ids are opaque: a string that is not one names no book; one too long for any id is a 400
    const notAnId = await get('/v1/books/not-an-id');
    expect([notAnId.status, notAnId.json.code, notAnId.reads]).toEqual([404, 'book_not_found', 0]);
    const badId = await get(`/v1/books/${'X'.repeat(65)}`);
    expect([badId.status, badId.json.code, badId.reads]).toEqual([400, 'validation_failed', 0]);
    expect(badId.json.detail).toContain('path.id');
    const badQuery = await get('/v1/books?bogus=1');
    expect([badQuery.status, badQuery.json.code, badQuery.reads]).toEqual([400, 'validation_failed', 0]);
    expect(badQuery.json.detail).toContain('query.bogus');
    const health = await get('/health', { 'X-Request-Id': 'trace-1' });
    expect(health).toMatchObject({ status: 200, reads: 0 });
    const echoed = await app.request(new Watched('http://localhost/health', { 'X-Request-Id': 'trace-1' }));
    expect(echoed.headers.get('X-Request-Id')).toBe('trace-1');
    // an answer Hono built itself (the OpenAPI document) gets the request's headers afterwards
    const doc = await app.request(
      new Watched('http://localhost/openapi.json', { 'X-Request-Id': 'trace-2' }),
    );
    expect([doc.status, doc.headers.get('X-Request-Id'), doc.headers.get('X-Served-By')]).toEqual([
      200,
      'trace-2',
      'api-test',
    ]);
    // a problem carries them too, with its own headers
    const unauthorized = await app.request(
      new Watched('http://localhost/v1/members/me', { 'X-Tenant-ID': 'acme', 'X-Request-Id': 'trace-3' }),
    );
    expect(unauthorized.status).toBe(401);
    expect(Object.fromEntries(unauthorized.headers)).toMatchObject({
      'content-type': 'application/problem+json',
      'www-authenticate': expect.stringContaining('Bearer'),
      'x-request-id': 'trace-3',
      'x-served-by': 'api-test',
      'x-shard': 'shard-1',
    });
  });

  it('checks a token sent to a public route: 401 when it is not one, 403 when it is of another tenant', async () => {
    const { call, register } = setup();
    const ann = await register('acme', 'ann@example.com');
    const bob = await register('globex', 'bob@example.com');
    expect((await call('GET', '/v1/books', { token: ann.token })).status).toBe(200);
    const foreign = await call('GET', '/v1/books', { token: bob.token });
    expect([foreign.status, foreign.json.code]).toEqual([403, 'tenant_mismatch']);
    const forged = await call('GET', '/v1/books', { token: `${ann.token.slice(0, -2)}xx` });
    expect([forged.status, forged.json.code]).toEqual([401, 'invalid_token']);
    // RFC 6750 §3: a token that was sent and is not good says so in the challenge
    expect(forged.res.headers.get('WWW-Authenticate')).toBe(
      'Bearer realm="shardgate", error="invalid_token"',
    );
    const notBearer = await call('GET', '/v1/books', { headers: { Authorization: 'Basic YTpi' } });
    expect([notBearer.status, notBearer.json.code]).toEqual([401, 'invalid_token']);
    // a route that needs a member still says so without any token, with no error code
    const none = await call('GET', '/v1/members/me');
    expect([none.json.code, none.res.headers.get('WWW-Authenticate')]).toEqual([
      'unauthorized',
      'Bearer realm="shardgate"',
    ]);
  });

  it('answers OPTIONS of a known path 204 with Allow, of an unknown path 404 (RFC 9110 §9.3.7)', async () => {
    const { call } = setup();
    // before: 405 method_not_allowed, though the path exists
    for (const [path, allow] of [
      ['/v1/books', 'GET, HEAD, OPTIONS, POST'],
      ['/v1/books/01JD5X8Q9W6ZV1N2M3K4H5G6F7', 'DELETE, GET, HEAD, OPTIONS, PATCH'],
      ['/v1/loans/01JD5X8Q9W6ZV1N2M3K4H5G6F7/return', 'OPTIONS, POST'],
      ['/health', 'GET, HEAD, OPTIONS'],
    ] as const) {
      for (const tenant of [undefined, null, 'no-such-tenant']) {
        const r = await call('OPTIONS', path, tenant === undefined ? {} : { tenant });
        // the known tenant's shard on a /v1 path (CONTRACT §6: every /v1 answer), else none
        const shard = tenant === undefined && path.startsWith('/v1/') ? 'shard-1' : null;
        expect([path, r.status, r.res.headers.get('Allow'), r.res.headers.get('X-Shard')]).toEqual([
          path,
          204,
          allow,
          shard,
        ]);
        expect(r.json).toBeUndefined();
        expect(r.res.headers.get('X-Request-Id')).toBeTruthy();
        // not a CORS preflight answer
        expect(r.res.headers.get('Access-Control-Allow-Origin')).toBeNull();
      }
    }
    const unknown = await call('OPTIONS', '/v1/nothing-here');
    expect([unknown.status, unknown.json.code, unknown.res.headers.get('Allow')]).toEqual([
      404,
      'not_found',
      null,
    ]);
  });

  it('answers a known path asked with another method 405 with Allow, an unknown path 404', async () => {
    const { call } = setup();
    const put = await call('PUT', '/v1/books', { body: {} });
    expect([put.status, put.json.code, put.res.headers.get('Allow')]).toEqual([
      405,
      'method_not_allowed',
      'GET, HEAD, OPTIONS, POST',
    ]);
    expect(put.res.headers.get('content-type')).toContain('application/problem+json');
    const del = await call('DELETE', '/v1/loans/01JD5X8Q9W6ZV1N2M3K4H5G6F7/return');
    expect([del.status, del.res.headers.get('Allow')]).toEqual([405, 'OPTIONS, POST']);
    expect((await call('POST', '/health')).res.headers.get('Allow')).toBe('GET, HEAD, OPTIONS');
    const unknown = await call('GET', '/v1/nothing-here');
    expect([unknown.status, unknown.json.code]).toEqual([404, 'not_found']);
    // a known tenant's 404 and 405 of the path name its shard (CONTRACT §6: every /v1 answer),
    // and no cache may keep them
    for (const r of [put, del, unknown]) {
      expect(r.res.headers.get('X-Shard')).toBe('shard-1');
      expect(r.res.headers.get('Cache-Control')).toBe('no-store');
    }
    // the same without a tenant, or with an unknown one: the path is what is wrong
    for (const tenant of [null, 'no-such-tenant']) {
      expect((await call('GET', '/v1/nope', { tenant })).status).toBe(404);
      const wrong = await call('PUT', '/v1/books', { tenant });
      expect([wrong.status, wrong.res.headers.get('Allow')]).toEqual([405, 'GET, HEAD, OPTIONS, POST']);
    }
    // a known route without a tenant still names the header
    const missing = await call('GET', '/v1/books', { tenant: null });
    expect([missing.status, missing.json.errors?.[0]?.field]).toEqual([400, 'header.X-Tenant-ID']);
    // one URL answers per tenant: a public read and a tenant's refusal are no one's to keep
    // (before: a shared cache in front could hand one tenant's list to another)
    const list = await call('GET', '/v1/books');
    const unknownTenant = await call('GET', '/v1/books', { tenant: 'no-such-tenant' });
    expect([list.status, unknownTenant.status]).toEqual([200, 404]);
    for (const r of [list, unknownTenant, missing])
      expect(r.res.headers.get('Cache-Control')).toBe('no-store');
  });

  it("answers a wrong path or method 404 / 405 / OPTIONS 204 before looking at the caller's credentials", async () => {
    const { call, register } = setup();
    const { token: globexToken } = await register('globex', 'g@example.com');
    // before: 401 invalid_token, 403 tenant_mismatch or 400 invalid_consistency_token, which
    // told a client that mistyped a path to log in again (an outside check)
    const credentials: Record<string, string>[] = [
      { Authorization: 'Bearer garbage' },
      { Authorization: 'Basic abc' },
      { Authorization: `Bearer ${globexToken}` },
      { 'X-Consistency-Token': 'forged' },
    ];
    for (const headers of credentials) {
      const nope = await call('GET', '/v1/nope', { headers });
      const slash = await call('GET', '/v1/books/', { headers });
      const put = await call('PUT', '/v1/books', { headers, body: {} });
      const options = await call('OPTIONS', '/v1/books', { headers });
      expect(
        [nope.status, nope.json.code, slash.status, put.status, put.res.headers.get('Allow')],
        JSON.stringify(headers),
      ).toEqual([404, 'not_found', 404, 405, 'GET, HEAD, OPTIONS, POST']);
      expect([options.status, options.res.headers.get('Allow')]).toEqual([204, 'GET, HEAD, OPTIONS, POST']);
      for (const r of [nope, put, options]) expect(r.res.headers.get('X-Shard')).toBe('shard-1');
      // on a route the credentials are looked at as before (HEAD is served by the GET route)
      const head = await call('HEAD', '/v1/books', { headers });
      const served = await call('GET', '/v1/books', { headers });
      expect(head.status).toBe(served.status);
      expect(served.status, JSON.stringify(headers)).toBe(
        headers.Authorization === `Bearer ${globexToken}` ? 403 : headers.Authorization ? 401 : 400,
      );
    }
  });

  it('answers a write whose connection was lost before its COMMIT 503 dependency_unavailable, after it 503 write_outcome_unknown', async () => {
    for (const [outcomeUnknown, code] of [
      [false, 'dependency_unavailable'],
      [true, 'write_outcome_unknown'],
    ] as const) {
      const data = new MemoryDataAccess();
      data.write = async () => {
        throw new DependencyUnavailableError('mysql-master:shard-1', 'PROTOCOL_CONNECTION_LOST', {
          outcomeUnknown,
        });
      };
      const { call } = setup({ data });
      const uncertain = vi.spyOn(ReadCache.prototype, 'afterUncertainWrite');
      const r = await call('POST', '/v1/members', {
        body: { email: 'a@example.com', name: 'A', password: 'password1' },
      });
      expect(r.status).toBe(503);
      expect(r.json.code).toBe(code);
      expect(r.res.headers.get('Retry-After')).toBe('1');
      // a write that may have applied retires the cache's entries (read-cache.ts), one that was
      // not applied leaves them
      expect(uncertain).toHaveBeenCalledTimes(outcomeUnknown ? 1 : 0);
      uncertain.mockRestore();
    }
  });

  it('answers a registration or login whose password work got no turn 503 server_busy with Retry-After, writing nothing', async () => {
    const owners: string[] = [];
    const { call, data } = setup({
      passwordWork: {
        run: async (owner) => {
          owners.push(owner);
          throw new PasswordWorkBusyError(2000);
        },
      },
    });
    const registered = await call('POST', '/v1/members', {
      body: { email: 'a@example.com', name: 'A', password: 'password1' },
    });
    const login = await call('POST', '/v1/auth/login', {
      body: { email: 'a@example.com', password: 'password1' },
    });
    for (const r of [registered, login]) {
      expect([r.status, r.json.code, r.res.headers.get('Retry-After')]).toEqual([503, 'server_busy', '1']);
      expect(r.json.detail).toContain('nothing was written');
    }
    // the work takes turns by the request's tenant
    expect(owners).toEqual(['acme', 'acme']);
    expect(data.committed.members.size).toBe(0);
  });

  it('names the shard of a suspended tenant in its 403', async () => {
    const { call, config } = setup();
    config.put('tenants/acme', JSON.stringify({ shard: 'shard-1', status: 'suspended' }));
    const r = await call('GET', '/v1/books');
    expect([r.status, r.json.code, r.res.headers.get('X-Shard')]).toEqual([
      403,
      'tenant_suspended',
      'shard-1',
    ]);
  });

  it('serves /docs with a pinned Swagger UI release', async () => {
    const { app } = setup();
    const page = await app.request('/docs');
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toMatch(/swagger-ui-dist@\d+\.\d+\.\d+\//);
    // each file it loads from the CDN with its subresource integrity
    const tags = html.match(/<(script src|link rel="stylesheet" href)="https:[^>]*>/g) ?? [];
    expect(tags).toHaveLength(2);
    for (const tag of tags)
      expect(tag).toMatch(/ integrity="sha384-[A-Za-z0-9+/]{64}" crossorigin="anonymous"/);
  });

  it('answers a compressed body 415 naming Content-Encoding, and a trailing slash 404', async () => {
    const { app, register } = setup();
    await register('acme', 'ann@example.com');
    const gz = await app.request('/v1/members', {
      method: 'POST',
      headers: { 'X-Tenant-ID': 'acme', 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' },
      body: 'x',
    });
    expect(gz.status).toBe(415);
    expect(((await gz.json()) as { detail: string; code: string }).detail).toContain('Content-Encoding');
    const slash = await app.request('/v1/books/', { headers: { 'X-Tenant-ID': 'acme' } });
    expect(slash.status).toBe(404);
  });

  it('words its refusals for people: password length, copies on loan, a token that is not one', async () => {
    const metrics = createPromMetrics();
    const { call, register } = setup({ metrics });
    const short = await call('POST', '/v1/members', {
      body: { email: 'short@example.com', name: 'S', password: 'seven77' },
    });
    expect(short.json.errors).toEqual([{ field: 'body.password', message: 'must be at least 8 characters' }]);
    const lib = await register('acme', 'lib@example.com');
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 2 },
    });
    await call('POST', '/v1/loans', { token: lib.token, body: { bookId: book.json.id } });
    const patched = await call('PATCH', `/v1/books/${book.json.id}`, {
      token: lib.token,
      body: { copies: 0 },
    });
    expect([patched.status, patched.json.detail]).toEqual([
      409,
      '1 copy is on loan; copies cannot go below that',
    ]);
    for (const credential of ['abc', 'abc def', 'a.b.c extra']) {
      const notJwt = await call('GET', '/v1/members/me', {
        headers: { Authorization: `Bearer ${credential}` },
      });
      expect([notJwt.status, notJwt.json.detail]).toEqual([
        401,
        'header.Authorization: the token after "Bearer " is not a member token (a JWT: three dot-separated parts)',
      ]);
    }
    const basic = await call('GET', '/v1/members/me', { headers: { Authorization: 'Basic YTpi' } });
    expect(basic.json.detail).toBe(
      'header.Authorization: must be "Bearer " followed by the member token from /v1/auth/login',
    );
    // the token of the wrong shape is counted with the other refused tokens; the other scheme is not a token
    const { body } = await metrics.render();
    expect(/auth_token_refusals_total\{reason="malformed"\} (\d+)/.exec(body)?.[1]).toBe('3');
  });

  it('documents the library API in /openapi.json', async () => {
    const { app } = setup();
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, unknown>;
      info: { description: string };
    };
    for (const path of [
      '/metrics',
      '/docs',
      '/openapi.json',
      '/health',
      '/v1/members',
      '/v1/members/me',
      '/v1/auth/login',
      '/v1/auth/change-password',
      '/v1/books',
      '/v1/books/{id}',
      '/v1/loans',
      '/v1/loans/{id}',
      '/v1/loans/{id}/return',
    ]) {
      expect(doc.paths[path], path).toBeDefined();
    }
    // the tenant header is documented on every /v1 operation (validated once, by tenantContext),
    // and so are the answer's headers, 401 (a token sent is checked) and 415 where a body goes
    // the answers any path can give, which no operation lists
    for (const code of ['not_found', 'method_not_allowed', 'request_timeout', 'headers_too_large'])
      expect(doc.info.description).toContain(`\`${code}\``);
    // the rules a body must meet beyond its JSON shape are in the schemas (an outside check sent
    // a 7-character password and a wrong ISBN check digit that the document allowed)
    const schemas = (
      doc as unknown as {
        components: {
          schemas: Record<
            string,
            { properties: Record<string, { minLength?: number; description?: string }> }
          >;
        };
      }
    ).components.schemas;
    expect(schemas.RegisterMember?.properties.password?.minLength).toBe(8);
    expect(schemas.NewBook?.properties.isbn?.description).toContain('check digit');
    type Operation = {
      description?: string;
      parameters?: unknown[];
      requestBody?: unknown;
      responses: Record<string, { description: string; headers?: Record<string, unknown> }>;
    };
    // each write's 409 names the domain conflicts by their problem code, beside the key's
    const conflicts: Record<string, string> = {
      'post /v1/members': 'email_taken',
      'patch /v1/books/{id}': 'copies_on_loan',
      'delete /v1/books/{id}': 'book_on_loan',
      'post /v1/loans': 'no_copy_available',
      'post /v1/loans/{id}/return': 'already_returned',
    };
    for (const [path, operations] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, op] of Object.entries(operations as Record<string, Operation>)) {
        const where = `${method} ${path}`;
        expect(op.parameters, where).toContainEqual(
          expect.objectContaining({ in: 'header', name: 'x-tenant-id', required: true }),
        );
        if (method === 'get')
          expect(op.parameters, where).toContainEqual(
            expect.objectContaining({ in: 'header', name: 'x-consistency-token', required: false }),
          );
        // registration and login do not look at a token: no 401 of one (a login's is its credentials)
        if (where === 'post /v1/members') expect(Object.keys(op.responses), where).not.toContain('401');
        else expect(Object.keys(op.responses), where).toContain('401');
        if (conflicts[where])
          expect(op.responses['409']?.description, where).toContain(`\`${conflicts[where]}\``);
        if (op.requestBody) expect(Object.keys(op.responses), where).toContain('415');
        // a write without a body refuses one too: too large, or not JSON
        if (method !== 'get' && !op.requestBody)
          expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['413', '415']));
        // registration and login look at no token: their 403 is the tenant's, their 401 the login's
        if (where === 'post /v1/members' || where === 'post /v1/auth/login') {
          expect(op.responses['403']?.description, where).toContain('`tenant_suspended`');
          expect(op.responses['403']?.description, where).not.toContain('`tenant_mismatch`');
        }
        if (where === 'post /v1/auth/login')
          expect(op.responses['401']?.description).toContain('invalid_credentials');
        expect(Object.keys(op.responses), where).toEqual(expect.arrayContaining(['408', '431']));
        // a write without a body says it takes none (no-body.ts refuses anything but `{}`)
        if (method !== 'get' && !op.requestBody) expect(op.description, where).toContain('Takes no body');
        for (const [status, response] of Object.entries(op.responses)) {
          const headers = Object.keys(response.headers ?? {});
          expect(headers, `${where} ${status}`).toEqual(expect.arrayContaining(['X-Request-Id', 'X-Shard']));
          if ((where === 'post /v1/books' || where === 'post /v1/loans') && status === '201')
            expect(headers, where).toContain('Location');
          if (status === '423') expect(headers, where).toContain('Retry-After');
          if (status.startsWith('2'))
            // a login only reads: it answers where it read, and gives no consistency token
            expect(headers, `${where} ${status}`).toContain(
              method === 'get' || where === 'post /v1/auth/login' ? 'X-Read-From' : 'X-Consistency-Token',
            );
          if (status.startsWith('2') && method !== 'get' && where !== 'post /v1/auth/login')
            expect(headers, `${where} ${status}`).toContain('Idempotent-Replayed');
        }
      }
    }
  });

  it('takes names and titles in any script, emoji sequences and passwords with spaces; refuses bidi controls and invisible-only text', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const ok = await call('POST', '/v1/members', {
      // Arabic and Hebrew need no bidi control; a ZWJ joins the emoji, a ZWNJ is Persian spelling
      body: {
        email: 'rtl@example.com',
        name: 'ليلى שרה 👩\u200d💻 می\u200cخواهم ภาษาไทย हिन्दी',
        password: 'a b c d e f',
      },
    });
    expect(ok.status).toBe(201);
    const login = await call('POST', '/v1/auth/login', {
      body: { email: 'rtl@example.com', password: 'a b c d e f' },
    });
    expect(login.status).toBe(200);
    for (const [body, field] of [
      [{ email: 'x1@example.com', name: 'a\u2066b\u2069', password: 'password1' }, 'body.name'],
      [{ email: 'x2@example.com', name: '\u00a0\u200b\u3000', password: 'password1' }, 'body.name'],
      [{ email: 'x3@example.com', name: 'X', password: 'pass\u0007word' }, 'body.password'],
      // invisible in any other way: Hangul fillers, blank Braille, a lone combining mark
      [{ email: 'x4@example.com', name: '\u3164\uffa0', password: 'password1' }, 'body.name'],
      [{ email: 'x5@example.com', name: '\u2800 \u034f', password: 'password1' }, 'body.name'],
      [{ email: 'x6@example.com', name: '\u0301\ufe0f', password: 'password1' }, 'body.name'],
      [{ email: 'x7@example.com', name: 'a\uffff', password: 'password1' }, 'body.name'],
      [{ email: 'x8@example.com', name: 'X', password: '\u3164'.repeat(8) }, 'body.password'],
      // direction marks make two names that read alike different strings
      [{ email: 'x9@example.com', name: 'Ann\u200e', password: 'password1' }, 'body.name'],
      [{ email: 'x10@example.com', name: 'Ann\u200f', password: 'password1' }, 'body.name'],
      [{ email: 'x11@example.com', name: 'Ann\u061c', password: 'password1' }, 'body.name'],
      // tag characters hide text; private-use characters show what a font likes
      [{ email: 'x12@example.com', name: 'Ann\u{E0041}\u{E0042}', password: 'password1' }, 'body.name'],
      [{ email: 'x13@example.com', name: '\u{1F3F4}\u{E0067}\u{E0062}', password: 'password1' }, 'body.name'],
      [{ email: 'x14@example.com', name: 'Ann\ue000', password: 'password1' }, 'body.name'],
      [{ email: 'x15@example.com', name: 'Ann\u{F0000}', password: 'password1' }, 'body.name'],
      // format characters that show as nothing: `Ann\u200b` reads as Ann
      ...['\u200b', '\u2060', '\u00ad', '\u180e', '\ufeff', '\u2063'].map(
        (c, i) =>
          [{ email: `y${i}@example.com`, name: `An${c}n`, password: 'password1' }, 'body.name'] as const,
      ),
      // a long run of tags between a black flag and a cancel tag is hidden text, not a flag
      [
        {
          email: 'x16@example.com',
          name: `T \u{1F3F4}${[...'approveit'].map((c) => String.fromCodePoint(0xe0000 + c.charCodeAt(0))).join('')}\u{E007F}`,
          password: 'password1',
        },
        'body.name',
      ],
    ] as const) {
      const r = await call('POST', '/v1/members', { body });
      expect([r.status, r.json.errors?.map((e: { field: string }) => e.field)]).toEqual([400, [field]]);
    }
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T\u202d', author: 'A', copies: 1 },
    });
    expect([book.status, book.json.errors?.[0]?.message]).toEqual([
      400,
      'must not contain bidi controls or direction marks (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069)',
    ]);
    // a subdivision flag is the one place tag characters belong
    const flag = await call('POST', '/v1/books', {
      token: lib.token,
      body: {
        isbn: '978-0-13-468599-1',
        title: 'England \u{1F3F4}\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}',
        author: 'A',
        copies: 1,
      },
    });
    expect(flag.status).toBe(201);
    // ZWJ and ZWNJ stay: an emoji sequence, a Persian word
    const joined = await call('POST', '/v1/books', {
      token: lib.token,
      body: {
        isbn: '978-0-13-468599-1',
        title: '\u{1F469}\u200D\u{1F4BB} \u0645\u06CC\u200C\u062E\u0648\u0627\u0647\u0645',
        author: 'A',
        copies: 1,
      },
    });
    expect(joined.status).toBe(201);
  });

  it('removes blanks around a name, and refuses a line break, U+2028, U+2029 or U+FEFF there as anywhere else', async () => {
    const { call } = setup();
    // before: String#trim dropped these at either end, and `Ann\u2028` was stored as `Ann`
    const refused = ['\u2028', '\u2029', '\ufeff', '\n', '\r\n', '\u0085'].flatMap((c) => [
      `Ann${c}`,
      `${c}Ann`,
    ]);
    for (const [i, name] of refused.entries()) {
      const r = await call('POST', '/v1/members', {
        body: { email: `edge${i}@example.com`, name, password: 'password1' },
      });
      expect([JSON.stringify(name), r.status, r.json.errors?.[0]?.field]).toEqual([
        JSON.stringify(name),
        400,
        'body.name',
      ]);
    }
    for (const [i, name] of [' Ann ', '\u00a0Ann\u3000', '\tAnn\t', '\u2009 Ann'].entries()) {
      const r = await call('POST', '/v1/members', {
        body: { email: `blank${i}@example.com`, name, password: 'password1' },
      });
      expect([JSON.stringify(name), r.status, r.json.name]).toEqual([JSON.stringify(name), 201, 'Ann']);
    }
  });

  it('refuses a body on a write that takes none, a charset other than UTF-8, and a query that is not UTF-8', async () => {
    const { app, call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 2 },
    });
    const loan = await call('POST', '/v1/loans', { token: lib.token, body: { bookId: book.json.id } });
    const refused = await call('POST', `/v1/loans/${loan.json.id}/return`, {
      token: lib.token,
      body: { x: 1 },
    });
    expect([refused.status, refused.json.errors]).toEqual([
      400,
      [{ field: 'body', message: 'this route takes no body (send none, or {})' }],
    ]);
    // the loan was not returned by the refused request; `{}` counts as no body
    // `{}` only as JSON, as any body (it was taken as text/plain)
    for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
      const typed = await app.request(`/v1/loans/${loan.json.id}/return`, {
        method: 'POST',
        headers: { 'X-Tenant-ID': 'acme', Authorization: `Bearer ${lib.token}`, 'Content-Type': type },
        body: '{}',
      });
      const json = (await typed.json()) as { errors?: { field: string }[] };
      expect([typed.status, json.errors?.[0]?.field], type).toEqual([415, 'header.Content-Type']);
    }
    const returned = await call('POST', `/v1/loans/${loan.json.id}/return`, { token: lib.token, body: {} });
    expect(returned.status).toBe(200);
    const del = await call('DELETE', `/v1/books/${book.json.id}`, { token: lib.token, body: 'hello' });
    expect([del.status, del.json.errors?.[0]?.field]).toEqual([400, 'body']);

    const latin1 = await postWithType('/v1/members', 'application/json; charset=ISO-8859-1');
    expect([latin1.status, latin1.json.code, latin1.json.detail]).toEqual([
      415,
      'unsupported_media_type',
      'header.Content-Type: charset "ISO-8859-1" is not accepted; send the body as UTF-8',
    ]);
    expect((await postWithType('/v1/members', 'application/json; charset="utf-8"')).status).toBe(201);
    // a 415 names its header as a 400 names its field (it named none without a Content-Type)
    const untyped = await postWithType('/v1/members', 'text/plain');
    expect([untyped.status, untyped.json.errors?.[0]?.field]).toEqual([415, 'header.Content-Type']);
    expect(latin1.json.errors?.[0]?.field).toBe('header.Content-Type');

    const bad = await call('GET', '/v1/books?author=%FF');
    expect([bad.status, bad.json.errors]).toEqual([
      400,
      [{ field: 'query.author', message: 'not valid percent-encoded UTF-8' }],
    ]);
    expect((await call('GET', '/v1/books?author=%C3%A9')).status).toBe(200);

    async function postWithType(path: string, contentType: string) {
      const res = await app.request(path, {
        method: 'POST',
        headers: { 'X-Tenant-ID': 'acme', 'Content-Type': contentType },
        body: JSON.stringify({ email: `c${Math.random()}@example.com`, name: 'C', password: 'password1' }),
      });
      return {
        status: res.status,
        json: (await res.json()) as { code: string; detail: string; errors?: { field: string }[] },
      };
    }
  });

  it('refuses a query parameter on a route that takes none, naming it, as the list routes do', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 },
    });
    for (const [method, path] of [
      ['GET', `/v1/books/${book.json.id}?foo=1`],
      ['GET', '/v1/members/me?foo=1&bar=2'],
      ['DELETE', `/v1/books/${book.json.id}?foo=1`],
    ] as const) {
      const r = await call(method, path, { token: lib.token });
      expect([path, r.status, r.json.code]).toEqual([path, 400, 'validation_failed']);
      expect(r.json.errors.map((e: { field: string }) => e.field)).toEqual(
        path.includes('bar') ? ['query.foo', 'query.bar'] : ['query.foo'],
      );
    }
    // an empty query is no parameter
    expect((await call('GET', `/v1/books/${book.json.id}?`)).status).toBe(200);
  });

  it('lets login and registration through with a stale or foreign Bearer token in the headers', async () => {
    const { call, register } = setup();
    const other = await register('globex', 'gil@example.com');
    await register('acme', 'ann@example.com');
    for (const token of ['a.b.c', other.token]) {
      const login = await call('POST', '/v1/auth/login', {
        token,
        body: { email: 'ann@example.com', password: 'correct horse' },
      });
      expect(login.status).toBe(200);
      const registered = await call('POST', '/v1/members', {
        token,
        body: { email: `new-${token.length}@example.com`, name: 'New', password: 'correct horse' },
      });
      expect(registered.status).toBe(201);
      // everywhere else the token is still checked
      expect((await call('GET', '/v1/books', { token })).status).toBe(token === 'a.b.c' ? 401 : 403);
    }
  });
});

describe('a query parameter given twice', () => {
  it('is a 400 naming it, not a library message about arrays', async () => {
    const { call } = setup();
    const r = await call('GET', '/v1/books?limit=1&limit=2');
    expect(r.status).toBe(400);
    expect(r.json.errors).toEqual([
      { field: 'query.limit', message: 'given more than once: send each parameter once' },
    ]);
    expect((await call('GET', '/v1/books?limit=1')).status).toBe(200);
  });
});

describe('a one-value header sent twice', () => {
  it('is refused with a message that says so, for the tenant, the Bearer token and the consistency token', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const twice = 'one value only: the header was sent more than once, or holds a list';
    const tenant = await call('GET', '/v1/books', { tenant: null, headers: { 'X-Tenant-ID': 'acme, acme' } });
    expect([tenant.status, tenant.json.errors]).toEqual([
      400,
      [{ field: 'header.X-Tenant-ID', message: twice }],
    ]);
    const bearer = await call('GET', '/v1/members/me', {
      headers: { Authorization: `Bearer ${lib.token}, Bearer ${lib.token}` },
    });
    expect([bearer.status, bearer.json.detail]).toEqual([401, `header.Authorization: ${twice}`]);
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 },
    });
    const written = book.res.headers.get('X-Consistency-Token')!;
    const read = await call('GET', `/v1/books/${book.json.id}`, {
      headers: { 'X-Consistency-Token': `${written}, ${written}` },
    });
    expect([read.status, read.json.code, read.json.detail]).toEqual([
      400,
      'invalid_consistency_token',
      `header.X-Consistency-Token: ${twice}`,
    ]);
    // one of each still works
    const once = await call('GET', `/v1/books/${book.json.id}`, {
      headers: { 'X-Consistency-Token': written },
    });
    expect(once.status).toBe(200);
  });
});

describe('an optional query parameter sent empty', () => {
  it('is one not sent: the contract writes the list route `?author=&cursor=&limit=` (it was a 400)', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    for (let i = 0; i < 22; i++) {
      await call('POST', '/v1/books', {
        token: lib.token,
        body: { isbn: '978-0-13-468599-1', title: `T${i}`, author: i % 2 ? 'Odd' : 'Even', copies: 1 },
      });
    }
    const plain = await call('GET', '/v1/books');
    for (const path of [
      '/v1/books?author=&cursor=&limit=',
      '/v1/books?author=%20&limit=%20',
      '/v1/books?cursor=',
    ]) {
      const r = await call('GET', path);
      expect([path, r.status, r.json.items.length]).toEqual([path, 200, 20]);
      expect(r.json).toEqual(plain.json);
    }
    // the empty ones are absent, the others apply
    const odd = await call('GET', '/v1/books?author=Odd&cursor=&limit=');
    expect([odd.status, odd.json.items.length]).toEqual([200, 11]);
    const loans = await call('GET', '/v1/loans?cursor=&limit=', { token: lib.token });
    expect([loans.status, loans.json.items]).toEqual([200, []]);
    // what is sent and wrong is still a 400 naming it
    const zero = await call('GET', '/v1/books?limit=0&cursor=');
    expect([zero.status, zero.json.errors?.[0]?.field]).toEqual([400, 'query.limit']);
  });
});

describe('a query parameter with a value and no name', () => {
  it('is a 400 on every route instead of being dropped; a bare `&` stays nothing', async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 },
    });
    for (const path of [
      '/v1/books?=x',
      '/v1/books?limit=5&=x',
      `/v1/books/${book.json.id}?=1`,
      '/v1/members/me?=',
    ]) {
      const r = await call('GET', path, { token: lib.token });
      expect([path, r.status, r.json.errors]).toEqual([
        path,
        400,
        [{ field: 'query', message: 'a parameter has a value but no name (`=` right after `?` or `&`)' }],
      ]);
    }
    expect((await call('GET', '/v1/books?limit=5&')).status).toBe(200);
    expect((await call('GET', '/v1/books?&limit=5')).status).toBe(200);
    expect((await call('GET', '/v1/books?author=a%3D%3Db')).status).toBe(200);
  });
});

describe('one loan: GET /v1/loans/{id}, the Location of a borrow', () => {
  it("answers the borrower's own loan; not to another member, nor to another tenant", async () => {
    const { call, register } = setup();
    const lib = await register('acme', 'lib@example.com');
    const mem = await register('acme', 'mem@example.com');
    const book = await call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '0306406152', title: 'T', author: 'A', copies: 2 },
    });
    const loan = await call('POST', '/v1/loans', { token: mem.token, body: { bookId: book.json.id } });
    expect(loan.status).toBe(201);
    const location = loan.res.headers.get('Location');
    expect(location).toBe(`/v1/loans/${loan.json.id}`);
    const one = await call('GET', location!, { token: mem.token });
    expect(one.status).toBe(200);
    expect(one.json).toEqual(loan.json);
    expect(one.res.headers.get('Cache-Control')).toBe('no-store');
    // returned: the same loan with its return time
    await call('POST', `${location}/return`, { token: mem.token });
    expect((await call('GET', location!, { token: mem.token })).json.returnedAt).toEqual(expect.any(String));
    // to anyone else it does not exist, as on return
    const other = await call('GET', location!, { token: lib.token });
    expect(other.status).toBe(404);
    expect(other.json.code).toBe('loan_not_found');
    expect((await call('GET', '/v1/loans/01JD5X8Q9W6ZV1N2M3K4H5G6F7', { token: mem.token })).status).toBe(
      404,
    );
    // ids are opaque: one of another shape is just not found
    expect((await call('GET', '/v1/loans/nope', { token: mem.token })).status).toBe(404);
    expect((await call('GET', location!)).status).toBe(401);
    // another tenant's member, with a token of that tenant
    const far = await register('globex', 'far@example.com');
    expect((await call('GET', location!, { tenant: 'globex', token: far.token })).status).toBe(404);
  });
});

describe('a write whose caller has gone (Services.callerGone)', () => {
  /** `answers`: what callerGone says on its 1st, 2nd, … call in a request; then its last value */
  function goneSetup(overrides: Partial<Omit<Services, 'config'>> = {}) {
    let answers: boolean[] = [false];
    let asked = 0;
    /** `atCommit` of each call, in order */
    const atCommits: boolean[] = [];
    const ctx = setup({
      ...overrides,
      callerGone: (_c, atCommit) => {
        const answer = answers[Math.min(asked, answers.length - 1)]!;
        asked += 1;
        atCommits.push(atCommit === true);
        return answer;
      },
    });
    const goneAfter = (...next: boolean[]) => {
      answers = next;
      asked = 0;
      atCommits.length = 0;
    };
    return { ...ctx, goneAfter, atCommits };
  }

  async function library() {
    const ctx = goneSetup();
    const lib = await ctx.register('acme', 'lib@example.com');
    const book = await ctx.call('POST', '/v1/books', {
      token: lib.token,
      body: { isbn: '0306406152', title: 'T', author: 'A', copies: 2 },
    });
    return { ...ctx, lib, bookId: book.json.id as string };
  }

  it('is not begun: 499 client_closed_request, no loan, no receipt, the copy still free', async () => {
    const { call, data, lib, bookId, goneAfter } = await library();
    const outbox = data.committed.outbox.length;
    goneAfter(true);
    const r = await call('POST', '/v1/loans', { token: lib.token, body: { bookId } });
    expect(r.status).toBe(499);
    expect(r.json).toMatchObject({ code: 'client_closed_request', status: 499 });
    expect(r.json.detail).toBe('the connection closed before the write began: nothing was written');
    expect(data.committed.loans.size).toBe(0);
    expect(data.committed.outbox).toHaveLength(outbox);
    expect([...data.committed.books.values()].find((b) => b.id === bookId)?.available).toBe(2);
    // reads do not ask
    expect((await call('GET', `/v1/books/${bookId}`)).status).toBe(200);
  });

  it('gone while the transaction ran: rolled back before its COMMIT', async () => {
    const { call, data, lib, bookId, goneAfter, atCommits } = await library();
    // present when the write begins, gone when its COMMIT would be sent
    goneAfter(false, true);
    const r = await call('POST', '/v1/loans', { token: lib.token, body: { bookId } });
    // before it began, then the check before the COMMIT: the one asked with every means
    expect(atCommits).toEqual([false, true]);
    expect(r.status).toBe(499);
    expect(r.json.detail).toBe('the connection closed before its commit: nothing was written');
    expect(data.committed.loans.size).toBe(0);
    expect([...data.committed.books.values()].find((b) => b.id === bookId)?.available).toBe(2);
  });

  it('a registration is refused before its password is hashed; a present caller is served', async () => {
    const hasher = new TestPasswordHasher();
    let hashed = 0;
    const passwords = {
      hash: (p: string) => {
        hashed += 1;
        return hasher.hash(p);
      },
      verify: hasher.verify.bind(hasher),
      verifyDummy: hasher.verifyDummy.bind(hasher),
    };
    const { call, data, goneAfter } = goneSetup({ passwords });
    goneAfter(true);
    const body = { email: 'ann@example.com', name: 'Ann', password: 'correct horse' };
    expect((await call('POST', '/v1/members', { body })).status).toBe(499);
    expect(hashed).toBe(0);
    expect(data.committed.members.size).toBe(0);
    goneAfter(false);
    expect((await call('POST', '/v1/members', { body })).status).toBe(201);
    expect(hashed).toBe(1);
    expect(data.committed.members.size).toBe(1);
  });

  it('claims no Idempotency-Key: the same key sent again is done once', async () => {
    const { call, data, lib, bookId, goneAfter } = await library();
    const headers = { 'Idempotency-Key': 'borrow-1' };
    goneAfter(false, true);
    expect((await call('POST', '/v1/loans', { token: lib.token, body: { bookId }, headers })).status).toBe(
      499,
    );
    expect(data.committed.idempotency.size).toBe(0);
    goneAfter(false);
    const again = await call('POST', '/v1/loans', { token: lib.token, body: { bookId }, headers });
    expect(again.status).toBe(201);
    const replay = await call('POST', '/v1/loans', { token: lib.token, body: { bookId }, headers });
    expect(replay.res.headers.get('Idempotent-Replayed')).toBe('true');
    expect(data.committed.loans.size).toBe(1);
  });
});
