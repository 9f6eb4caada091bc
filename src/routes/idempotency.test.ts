import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { IDEMPOTENCY_RETENTION_MS, IdempotencyKeyContended } from '../domain/idempotency.js';
import { REPEATED_HEADER } from '../http/repeated-header.js';
import { ConflictPersistedError, DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { type CallOptions, callApp } from '../testing/call-app.js';
import { createMemoryServices } from '../testing/memory-services.js';

function setup() {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const services = createMemoryServices({ config });
  const app = createApp(services);
  const data = services.data as MemoryDataAccess;
  const call = (method: string, path: string, options: CallOptions = {}) =>
    callApp(app, method, path, options);
  const register = async (email: string) => {
    await call('POST', '/v1/members', { body: { email, name: 'N', password: 'correct horse' } });
    return (await call('POST', '/v1/auth/login', { body: { email, password: 'correct horse' } })).json
      .token as string;
  };
  const book = { isbn: '9780306406157', title: 'Once', author: 'A', copies: 1 };
  return { call, register, data, book, services };
}

/**
 * An app whose store (the database server) runs 300 s behind this instance's clock, with a
 * librarian registered and logged in
 */
async function behindStore() {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const server = () => Date.now() - 300_000;
  const data = new MemoryDataAccess({ now: server });
  const app = createApp(createMemoryServices({ config, data }));
  const call = (method: string, path: string, options: CallOptions = {}) =>
    callApp(app, method, path, options);
  await call('POST', '/v1/members', {
    body: { email: 'lib@example.com', name: 'N', password: 'correct horse' },
  });
  const { token } = (
    await call('POST', '/v1/auth/login', { body: { email: 'lib@example.com', password: 'correct horse' } })
  ).json;
  return { server, data, call, token: token as string };
}

describe('Idempotency-Key', () => {
  it('does a write once: the repeat gets the first answer again, marked replayed', async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    const first = await call('POST', '/v1/books', { token, key: 'add-once-1', body: book });
    const again = await call('POST', '/v1/books', { token, key: 'add-once-1', body: book });
    expect([first.status, again.status]).toEqual([201, 201]);
    expect(again.text).toBe(first.text);
    expect(again.res.headers.get('Location')).toBe(first.res.headers.get('Location'));
    expect(again.res.headers.get('X-Consistency-Token')).toBe(first.res.headers.get('X-Consistency-Token'));
    expect(again.res.headers.get('Content-Type')).toBe('application/json');
    expect(first.res.headers.get('Idempotent-Replayed')).toBeNull();
    expect(again.res.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.res.headers.get('X-Shard')).toBe('shard-1');
    expect(data.committed.books.size).toBe(1);
    // a borrow and a delete, too: one loan, one receipt
    const bookId = first.json.id;
    // two at once: one borrows, the other is told to retry (or, if it came late, replayed)
    const both = await Promise.all(
      [1, 2].map(() => call('POST', '/v1/loans', { token, key: 'borrow-1', body: { bookId } })),
    );
    expect(both.map((l) => `${l.status} ${l.json.code ?? ''}`).sort()).toContainEqual('201 ');
    for (const l of both)
      expect(['201 ', '409 idempotency_key_in_progress']).toContain(`${l.status} ${l.json.code ?? ''}`);
    const retried = await call('POST', '/v1/loans', { token, key: 'borrow-1', body: { bookId } });
    expect(retried.status).toBe(201);
    expect(retried.res.headers.get('Idempotent-Replayed')).toBe('true');
    const loans = [retried];
    expect(data.committed.loans.size).toBe(1);
    expect(data.committed.outbox.filter((o) => o.kind === 'loan_receipt')).toHaveLength(1);
    const returned = await call('POST', `/v1/loans/${loans[0]!.json.id}/return`, { token, key: 'return-1' });
    const returnedAgain = await call('POST', `/v1/loans/${loans[0]!.json.id}/return`, {
      token,
      key: 'return-1',
    });
    expect([returned.status, returnedAgain.status]).toEqual([200, 200]);
    expect(data.committed.outbox.filter((o) => o.kind === 'return_receipt')).toHaveLength(1);
    const deleted = await call('DELETE', `/v1/books/${bookId}`, { token, key: 'delete-1' });
    const deletedAgain = await call('DELETE', `/v1/books/${bookId}`, { token, key: 'delete-1' });
    expect([deleted.status, deletedAgain.status, deletedAgain.text]).toEqual([204, 204, '']);
    expect(deletedAgain.res.headers.get('Idempotent-Replayed')).toBe('true');
  });

  it('stores a keyed fingerprint of the request, not a plain hash anyone could test passwords against', async () => {
    const { call, data } = setup();
    const body = { email: 'new@example.com', name: 'N', password: 'correct horse' };
    expect((await call('POST', '/v1/members', { key: 'join-1', body })).status).toBe(201);
    const [stored] = [...data.committed.idempotency.values()];
    const canonical = `POST\n/v1/members\n${JSON.stringify({ email: body.email, name: body.name, password: body.password })}`;
    const plain = Buffer.from(
      await crypto.subtle.digest('SHA-256', new TextEncoder().encode(canonical)),
    ).toString('hex');
    expect(stored?.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(stored?.fingerprint).not.toBe(plain);
    // and it still recognises the same request
    const again = await call('POST', '/v1/members', { key: 'join-1', body });
    expect([again.status, again.res.headers.get('Idempotent-Replayed')]).toEqual([201, 'true']);
  });

  it("scopes a registration's key by the address it registers: strangers' keys never meet", async () => {
    // an outside check: every registration of a tenant shared one scope, so the same key from
    // another person got 422 idempotency_key_reused (or 409 while the first ran) for a day
    const { call, data } = setup();
    const alice = { email: 'alice@example.com', name: 'Alice', password: 'correct horse' };
    const bob = { email: 'bob@example.com', name: 'Bob', password: 'battery staple' };
    const first = await call('POST', '/v1/members', { key: 'signup', body: alice });
    const other = await call('POST', '/v1/members', { key: 'signup', body: bob });
    expect([first.status, other.status]).toEqual([201, 201]);
    expect(other.res.headers.get('Idempotent-Replayed')).toBeNull();
    // a retry of one registration (the address in another case) still finds its key
    const retry = await call('POST', '/v1/members', { key: 'signup', body: alice });
    expect([retry.status, retry.text, retry.res.headers.get('Idempotent-Replayed')]).toEqual([
      201,
      first.text,
      'true',
    ]);
    const changed = await call('POST', '/v1/members', {
      key: 'signup',
      body: { ...alice, email: 'Alice@Example.com', name: 'Another' },
    });
    expect([changed.status, changed.json.code]).toEqual([422, 'idempotency_key_reused']);
    expect(data.committed.idempotency.size).toBe(2);
  });

  it("makes a registration's repeat a password check of its address: throttled, a wrong guess counted as a failed login", async () => {
    // an outside check: replaying a known registration key with guessed passwords found the
    // first one (201 replayed against 422) in 101 guesses in 0.4 s, with no throttle in the way
    const { call } = setup();
    const vic = { email: 'vic@example.com', name: 'Vic', password: 'Summer2026!' };
    expect((await call('POST', '/v1/members', { key: 'signup-vic', body: vic })).status).toBe(201);
    // the member's own retries (the same body) count nothing, however many
    for (let i = 0; i < 12; i += 1) {
      const retry = await call('POST', '/v1/members', { key: 'signup-vic', body: vic });
      expect([retry.status, retry.res.headers.get('Idempotent-Replayed')]).toEqual([201, 'true']);
    }
    const answers: number[] = [];
    for (let i = 0; i < 12; i += 1) {
      const guess = await call('POST', '/v1/members', {
        key: 'signup-vic',
        body: { ...vic, password: `guess-number-${i}` },
      });
      answers.push(guess.status);
    }
    // ten wrong guesses (LOGIN_THROTTLE_POLICY.maxFailures), then every check of the address is refused
    expect(answers).toEqual([...Array(10).fill(422), 429, 429]);
    const right = await call('POST', '/v1/members', { key: 'signup-vic', body: vic });
    expect([right.status, right.json.code]).toEqual([429, 'too_many_login_attempts']);
    expect(right.res.headers.get('Retry-After')).toMatch(/^\d+$/);
    // the same account as a login's: the guesses locked the login too
    const login = await call('POST', '/v1/auth/login', {
      body: { email: 'VIC@example.com', password: vic.password },
    });
    expect(login.status).toBe(429);
    // a first registration is no password check: another address is not held up
    const ann = await call('POST', '/v1/members', {
      key: 'signup-vic',
      body: { email: 'ann@example.com', name: 'Ann', password: 'correct horse' },
    });
    expect(ann.status).toBe(201);
  });

  it('takes no body and `{}` for the same request on a route without a body, also for a key stored before', async () => {
    const { call, register, data, book, services } = setup();
    const token = await register('lib@example.com');
    const bookId = (await call('POST', '/v1/books', { token, body: { ...book, copies: 2 } })).json.id;
    const loanId = (await call('POST', '/v1/loans', { token, body: { bookId } })).json.id;
    const path = `/v1/loans/${loanId}/return`;
    expect((await call('POST', path, { token, key: 'ret-1' })).status).toBe(200);
    const withBraces = await call('POST', path, { token, key: 'ret-1', body: {} });
    expect([withBraces.status, withBraces.res.headers.get('Idempotent-Replayed')]).toEqual([200, 'true']);
    // a key stored before: no body was fingerprinted as the empty string
    const stored = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/ret-1'))!;
    const legacy = await services.requestFingerprints.sign(new TextEncoder().encode(`POST\n${path}\n`));
    stored.fingerprint = [...legacy].map((b) => b.toString(16).padStart(2, '0')).join('');
    for (const body of [undefined, {}]) {
      const again = await call('POST', path, { token, key: 'ret-1', body });
      expect([again.status, again.res.headers.get('Idempotent-Replayed')]).toEqual([200, 'true']);
    }
    // another body is another request
    expect((await call('POST', path, { token, key: 'ret-1', body: { x: 1 } })).status).toBe(400);
  });

  it('refuses the key with another request (body or route) with 422, and a malformed key with 400', async () => {
    const { call, register, book } = setup();
    const token = await register('lib@example.com');
    const first = await call('POST', '/v1/books', { token, key: 'k-1', body: book });
    expect(first.status).toBe(201);
    // the same JSON with its keys in another order, and the key in the draft's quoted form
    const reordered = Object.fromEntries(Object.entries(book).reverse());
    const again = await call('POST', '/v1/books', { token, key: '"k-1"', body: reordered });
    expect([again.status, again.text, again.res.headers.get('Idempotent-Replayed')]).toEqual([
      201,
      first.text,
      'true',
    ]);
    const cases = [
      await call('POST', '/v1/books', { token, key: 'k-1', body: { ...book, title: 'Twice' } }),
      await call('POST', '/v1/auth/change-password', {
        token,
        key: 'k-1',
        body: { currentPassword: 'correct horse', newPassword: 'another horse' },
      }),
    ];
    for (const r of cases) {
      expect(r.status).toBe(422);
      expect(r.json).toMatchObject({
        code: 'idempotency_key_reused',
        errors: [{ field: 'header.Idempotency-Key' }],
      });
    }
    for (const key of ['x'.repeat(201), 'with space', 'é', '""']) {
      const r = await call('POST', '/v1/books', { token, key, body: book });
      expect([r.status, r.json.code]).toEqual([400, 'validation_failed']);
      expect(r.json.errors).toEqual([
        { field: 'header.Idempotency-Key', message: '1 to 200 visible ASCII characters' },
      ]);
    }
    // sent twice (the runtime joins the values with ", "), or a list: named as such
    for (const key of ['k-1, k-2', 'k-1, k-1', '"k-1", "k-2"']) {
      const r = await call('POST', '/v1/books', { token, key, body: book });
      expect([key, r.status, r.json.errors]).toEqual([
        key,
        400,
        [{ field: 'header.Idempotency-Key', message: REPEATED_HEADER }],
      ]);
    }
    for (const key of ['"unterminated', '"a"b"', '"a\\b"', '"a\\"', '"a\\\\\\"']) {
      const r = await call('POST', '/v1/books', { token, key, body: book });
      expect([key, r.status, r.json.errors?.[0]?.message]).toEqual([
        key,
        400,
        'a quoted key must end with its closing quote, and a quote or backslash inside it must be escaped with a backslash',
      ]);
    }
    // the draft's sf-string escapes (RFC 8941 §3.3.3): `"q\"t\\s"` is the bare key `q"t\s`
    // (before: a 400 saying a quoted key holds no quote or backslash)
    const escaped = await call('POST', '/v1/books', { token, key: '"q\\"t\\\\s"', body: book });
    const bare = await call('POST', '/v1/books', { token, key: 'q"t\\s', body: book });
    expect([escaped.status, bare.status, bare.res.headers.get('Idempotent-Replayed'), bare.text]).toEqual([
      201,
      201,
      'true',
      escaped.text,
    ]);
  });

  it("keeps keys per member: another member's same key is its own request; a revoked token gets no replay", async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    const other = await register('member@example.com');
    const bookId = (await call('POST', '/v1/books', { token, body: { ...book, copies: 2 } })).json.id;
    const mine = await call('POST', '/v1/loans', { token, key: 'borrow', body: { bookId } });
    const theirs = await call('POST', '/v1/loans', { token: other, key: 'borrow', body: { bookId } });
    expect([mine.status, theirs.status, theirs.res.headers.get('Idempotent-Replayed')]).toEqual([
      201,
      201,
      null,
    ]);
    expect(data.committed.loans.size).toBe(2);
    // the member changes the password: the old token's replay is refused like any request of it
    const changed = await call('POST', '/v1/auth/change-password', {
      token: other,
      body: { currentPassword: 'correct horse', newPassword: 'another horse' },
    });
    expect(changed.status).toBe(204);
    const replay = await call('POST', '/v1/loans', { token: other, key: 'borrow', body: { bookId } });
    expect([replay.status, replay.json.code]).toEqual([401, 'token_revoked']);
  });

  it("stores the answer again when the master's connection was lost storing it the first time", async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    // the book's write goes through; the first store of its answer loses its connection
    const write = data.write.bind(data);
    let writes = 0;
    data.write = (tenant, fn, options) => {
      writes++;
      if (writes === 2)
        return Promise.reject(
          new DependencyUnavailableError('mysql-master:shard-1', 'PROTOCOL_CONNECTION_LOST'),
        );
      return write(tenant, fn, options);
    };
    const first = await call('POST', '/v1/books', { token, key: 'lost-store-1', body: book });
    expect(first.status).toBe(201);
    expect(writes).toBe(3);
    const again = await call('POST', '/v1/books', { token, key: 'lost-store-1', body: book });
    expect(again.status).toBe(201);
    expect(again.res.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.text).toBe(first.text);
  });

  it('answers 409 in progress when claims of the key kept deadlocking, 503 when the last attempt failed otherwise', async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    const write = data.write.bind(data);
    /** the adapter: one attempt whose claim meets another claim of the key, then `last` */
    const contendedThen = (last: Error) => {
      data.write = async (tenant, fn, options) => {
        await write(
          tenant,
          (repos, tx) => {
            const idempotency = Object.assign(Object.create(repos.idempotency), {
              claim: async () => {
                throw new IdempotencyKeyContended('k', { cause: new Error('ER_LOCK_DEADLOCK') });
              },
            });
            return fn(Object.assign(Object.create(repos), { idempotency }), tx);
          },
          options,
        ).catch(() => {});
        throw last;
      };
    };
    // its retries ran out on the same contention: the other request with the key is running
    contendedThen(new ConflictPersistedError('mysql-master:shard-1', { retryAfterSeconds: 1 }));
    const racing = await call('POST', '/v1/books', { token, key: 'k-race', body: book });
    expect([racing.status, racing.json.code]).toEqual([409, 'idempotency_key_in_progress']);
    // the retry found no free connection before its claim ran: that is the master's 503 (before
    // the flag of the attempt before made it a 409)
    contendedThen(
      new DependencyUnavailableError('mysql-master:shard-1', 'no free connection within 1000 ms'),
    );
    const busy = await call('POST', '/v1/books', { token, key: 'k-busy', body: book });
    expect([busy.status, busy.json.code]).toEqual([503, 'dependency_unavailable']);
    expect(data.committed.books.size).toBe(0);
  });

  it('stores nothing for a write that failed, so the key can be sent again', async () => {
    const { call, register, data } = setup();
    await register('lib@example.com');
    const taken = await call('POST', '/v1/members', {
      key: 'reg-1',
      body: { email: 'lib@example.com', name: 'N', password: 'correct horse' },
    });
    expect(taken.status).toBe(409);
    expect(data.committed.idempotency.size).toBe(0);
    const fresh = await call('POST', '/v1/members', {
      key: 'reg-1',
      body: { email: 'lib@example.com', name: 'N', password: 'correct horse' },
    });
    expect(fresh.status).toBe(409);
    expect(fresh.res.headers.get('Idempotent-Replayed')).toBeNull();
  });

  it('answers 409 for a key whose write is still being answered, or whose answer was lost', async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    await call('POST', '/v1/books', { token, key: 'k-2', body: book });
    const row = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/k-2'))!;
    delete row.response;
    const running = await call('POST', '/v1/books', { token, key: 'k-2', body: book });
    expect([running.status, running.json.code, running.res.headers.get('Retry-After')]).toEqual([
      409,
      'idempotency_key_in_progress',
      '1',
    ]);
    row.createdAt = new Date(Date.now() - 60_000);
    const lost = await call('POST', '/v1/books', { token, key: 'k-2', body: book });
    expect([lost.status, lost.json.code]).toEqual([409, 'idempotency_key_answer_lost']);
    expect(data.committed.books.size).toBe(1);
  });

  it("measures a key's age by the store's clock, not this instance's (the database server 300 s behind it)", async () => {
    const { server, data, call, token } = await behindStore();
    const book = { isbn: '9780306406157', title: 'Once', author: 'A', copies: 1 };
    await call('POST', '/v1/books', { token, key: 'k-clock', body: book });
    const row = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/k-clock'))!;
    // claimed at the server's time
    expect(Math.abs(row.createdAt.getTime() - server())).toBeLessThan(5_000);
    delete row.response;
    // a second old by the server: still being answered (it was "answer lost" by this clock)
    const running = await call('POST', '/v1/books', { token, key: 'k-clock', body: book });
    expect([running.status, running.json.code]).toEqual([409, 'idempotency_key_in_progress']);
    row.createdAt = new Date(server() - 60_000);
    const lost = await call('POST', '/v1/books', { token, key: 'k-clock', body: book });
    expect([lost.status, lost.json.code]).toEqual([409, 'idempotency_key_answer_lost']);
  });

  it("decides a key's expiry by the store's clock: a key 23 h 58 min old by the server replays on an instance 300 s ahead", async () => {
    const { server, data, call, token } = await behindStore();
    const book = { isbn: '9780306406157', title: 'Once', author: 'A', copies: 1 };
    const first = await call('POST', '/v1/books', { token, key: 'k-old', body: book });
    expect(first.status).toBe(201);
    const row = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/k-old'))!;
    // kept 24 h by the server's clock: 2 min left there, expired by this instance's (5 min ahead)
    row.createdAt = new Date(server() - IDEMPOTENCY_RETENTION_MS + 120_000);
    const again = await call('POST', '/v1/books', { token, key: 'k-old', body: book });
    // a review: 409 idempotency_key_in_progress here, the key absent to the lookup (this clock)
    // and present to the claim (the server's)
    expect(again.status).toBe(201);
    expect(again.res.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.json.id).toBe(first.json.id);
    expect(data.committed.books.size).toBe(1);
  });

  it('answers answer_lost at once, not in progress, when the process that claimed the key runs no more', async () => {
    const { call, register, data, book, services } = setup();
    const token = await register('lib@example.com');
    const instance = (startedAt: string) =>
      JSON.stringify({ url: 'http://127.0.0.1:8101', configRevision: 1, startedAt });
    // this instance and a peer, each registered as it runs now
    services.config.put(`instances/${services.instanceId}`, instance(services.startedAt));
    services.config.put('instances/api-peer', instance('2026-01-01T00:00:00.000Z'));
    await call('POST', '/v1/books', { token, key: 'k-3', body: book });
    const row = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/k-3'))!;
    expect(row.claimedBy).toBe(`${services.instanceId} ${services.startedAt}`);
    delete row.response;
    const codeOf = async () => (await call('POST', '/v1/books', { token, key: 'k-3', body: book })).json.code;
    const claimedBy = (who: string) => {
      row.claimedBy = who;
    };

    // this very process, or a peer that runs the start that claimed it: still being answered
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    claimedBy('api-peer 2026-01-01T00:00:00.000Z');
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    // an earlier start of this instance, a peer restarted since, a peer no longer registered
    claimedBy(`${services.instanceId} 2025-12-31T23:59:59.000Z`);
    expect(await codeOf()).toBe('idempotency_key_answer_lost');
    claimedBy('api-peer 2025-12-31T23:59:59.000Z');
    expect(await codeOf()).toBe('idempotency_key_answer_lost');
    claimedBy('api-gone 2026-01-01T00:00:00.000Z');
    expect(await codeOf()).toBe('idempotency_key_answer_lost');
    // not known: a row from before claims were named, a name that does not parse
    delete row.claimedBy;
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    claimedBy('no-start-time');
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    // a later start than the one running or registered: two processes of one id, not a dead one
    claimedBy(`${services.instanceId} 2099-01-01T00:00:00.000Z`);
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    claimedBy('api-peer 2026-06-01T00:00:00.000Z');
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    // an instance started just now, not registered yet (it registers once ready)
    claimedBy(`api-new ${new Date().toISOString()}`);
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    // an instance whose etcd is gone judges no other: the registrations it holds may be stale
    claimedBy('api-gone 2026-01-01T00:00:00.000Z');
    expect(await codeOf()).toBe('idempotency_key_answer_lost');
    services.config.setConnected(false);
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    services.config.setConnected(true);
    // nor one that does not see its own registration (none in use)
    services.config.delete(`instances/${services.instanceId}`);
    expect(await codeOf()).toBe('idempotency_key_in_progress');
    expect(data.committed.books.size).toBe(1);
  });

  it('takes a key older than a day as a new one, purged or not: the write is done again', async () => {
    const { call, register, data, book } = setup();
    const token = await register('lib@example.com');
    const first = await call('POST', '/v1/books', { token, key: 'daily', body: book });
    expect(first.status).toBe(201);
    const row = [...data.committed.idempotency.values()].find((r) => r.key.endsWith('/daily'))!;
    // two days old and not purged yet (purging is lazy): before, 422 for another body, a replay
    // of the old answer for the same body, and no write either way
    row.createdAt = new Date(Date.now() - 2 * 24 * 3600 * 1000);
    const other = await call('POST', '/v1/books', { token, key: 'daily', body: { ...book, title: 'Twice' } });
    expect(other.status).toBe(201);
    expect(other.res.headers.get('Idempotent-Replayed')).toBeNull();
    expect(other.json.id).not.toBe(first.json.id);
    expect(data.committed.books.size).toBe(2);
    // the key is the new request's now: its repeat is replayed
    const again = await call('POST', '/v1/books', { token, key: 'daily', body: { ...book, title: 'Twice' } });
    expect(again.res.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.json.id).toBe(other.json.id);
    expect(data.committed.books.size).toBe(2);
  });

  it('leaves reads alone: a login with a key is answered as a login', async () => {
    const { call, register } = setup();
    await register('lib@example.com');
    const body = { email: 'lib@example.com', password: 'correct horse' };
    const a = await call('POST', '/v1/auth/login', { key: 'login-1', body });
    const b = await call('POST', '/v1/auth/login', { key: 'login-1', body });
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(b.res.headers.get('Idempotent-Replayed')).toBeNull();
  });
});
