/**
 * Every /v1 operation of /openapi.json lists, under each error status it documents, the problem
 * `code`s it can answer with that status: as the `enum` of the response's `code`, each also named
 * in the response's description. An outside check found none listed (`book_not_found` nowhere in
 * the document) though docs/http-api.md said the operations list theirs.
 * - each listed code is in docs/http-api.md's "Problem codes" table with that status;
 * - refusals of each kind, driven through the in-process app with memory adapters, carry a code
 *   their operation lists under their status.
 */
import { describe, expect, it } from 'vitest';
import { createApp, type Services } from '../app.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { PasswordWorkBusyError } from '../domain/password-hasher.js';
import { problemCodeRows } from '../http/problem-code-table.js';
import { DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { docText } from '../testing/docs-text.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { oneShardConfig } from '../testing/one-shard-config.js';

type Schema = { $ref?: string; allOf?: Schema[]; properties?: Record<string, { enum?: string[] }> };
type Response = { description: string; content?: Record<string, { schema?: Schema }> };
type Document = { paths: Record<string, Record<string, { responses: Record<string, Response> }>> };

const DOCS = docText('http-api.md');

/** code → the statuses docs/http-api.md's table gives it */
function documentedStatuses(): Map<string, Set<number>> {
  const statuses = new Map<string, Set<number>>();
  for (const row of problemCodeRows(DOCS))
    for (const code of row.codes) {
      const known = statuses.get(code) ?? new Set<number>();
      for (const status of row.statuses) known.add(status);
      statuses.set(code, known);
    }
  return statuses;
}

/** the codes a response lists: the `enum` of its problem's `code` */
function listedCodes(response: Response | undefined): string[] {
  const schema = response?.content?.['application/problem+json']?.schema;
  const parts = schema?.allOf ?? (schema ? [schema] : []);
  return parts.flatMap((part) => part.properties?.code?.enum ?? []);
}

/** the operation of the document that `path` (a concrete path) answers under */
function operationOf(doc: Document, method: string, path: string) {
  for (const [template, operations] of Object.entries(doc.paths)) {
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, '[^/]+')}$`);
    if (pattern.test(path.split('?')[0]!) && operations[method]) return operations[method]!;
  }
  return undefined;
}

function config({ loaded = true } = {}) {
  return oneShardConfig(
    {
      'tenants/globex': '{"shard":"shard-1","status":"active"}',
      'tenants/frozen': '{"shard":"shard-1","status":"readonly"}',
      'tenants/gone': '{"shard":"shard-1","status":"suspended"}',
    },
    { loaded },
  );
}

interface Init {
  tenant?: string | null;
  token?: string;
  /** an object is sent as JSON; a string as it is */
  body?: unknown;
  headers?: Record<string, string>;
}

/**
 * An app over memory services, and `answer`: a request whose status and code must be `expected`,
 * recorded with the operation that answered it for the check against the document.
 */
function setup(overrides: Partial<Omit<Services, 'config'>> & { loaded?: boolean } = {}) {
  const { loaded, ...services } = overrides;
  const store = config({ loaded });
  const app = createApp(createMemoryServices({ config: store, ...services }));
  const call = async (method: string, path: string, { tenant = 'acme', token, body, headers }: Init = {}) => {
    const h: Record<string, string> = { ...headers };
    if (tenant !== null) h['X-Tenant-ID'] = tenant;
    if (token !== undefined) h.Authorization = `Bearer ${token}`;
    if (body !== undefined) h['Content-Type'] ??= 'application/json';
    const res = await app.request(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    const text = await res.text();
    const json = text && res.headers.get('Content-Type')?.includes('json') ? JSON.parse(text) : undefined;
    return { status: res.status, json };
  };
  const answers: { what: string; method: string; path: string; status: number; code: string }[] = [];
  const answer = async (
    what: string,
    method: string,
    path: string,
    init: Init,
    expected: [status: number, code: string],
  ) => {
    const r = await call(method, path, init);
    expect([r.status, r.json?.code], what).toEqual(expected);
    answers.push({ what, method, path, status: r.status, code: r.json.code });
    return r;
  };
  /** the answers whose code their operation does not list under their status */
  const unlisted = async () => {
    const doc = (await (await app.request('/openapi.json')).json()) as Document;
    return answers
      .filter(({ method, path, status, code }) => {
        const op = operationOf(doc, method.toLowerCase(), path);
        return !listedCodes(op?.responses[String(status)]).includes(code);
      })
      .map(({ what, method, path, status, code }) => `${what}: ${method} ${path} ${status} ${code}`);
  };
  const token = async (tenant: string, email: string, password = 'correct horse') => {
    const r = await call('POST', '/v1/auth/login', { tenant, body: { email, password } });
    expect(r.status, `login ${email}`).toBe(200);
    return r.json.token as string;
  };
  const register = async (tenant: string, email: string, password = 'correct horse') => {
    const r = await call('POST', '/v1/members', {
      tenant,
      body: { email, name: email.split('@')[0], password },
    });
    expect(r.status, `register ${email}`).toBe(201);
    return token(tenant, email, password);
  };
  return { app, store, call, answer, unlisted, register, token };
}

describe('/openapi.json lists the problem codes of each /v1 operation', () => {
  it('under every error status, each in docs/http-api.md with that status and named in the description', async () => {
    const { app } = setup();
    const doc = (await (await app.request('/openapi.json')).json()) as Document;
    const documented = documentedStatuses();
    const problems: string[] = [];
    let listed = 0;
    for (const [path, operations] of Object.entries(doc.paths)) {
      if (!path.startsWith('/v1/')) continue;
      for (const [method, { responses }] of Object.entries(operations))
        for (const [status, response] of Object.entries(responses)) {
          if (Number(status) < 400) continue;
          const where = `${method} ${path} ${status}`;
          const codes = listedCodes(response);
          if (codes.length === 0) problems.push(`${where}: no codes`);
          for (const code of codes) {
            listed++;
            if (!documented.get(code)?.has(Number(status)))
              problems.push(`${where}: \`${code}\` is not in docs/http-api.md with this status`);
            if (!response.description.includes(`\`${code}\``))
              problems.push(`${where}: \`${code}\` is not named in the description`);
          }
        }
    }
    expect(problems).toEqual([]);
    expect(listed).toBeGreaterThan(100);
  });

  it('that the answers of refusals of every kind carry', async () => {
    const { answer, call, unlisted, register, token, store } = setup();
    const ann = await register('acme', 'ann@example.com'); // the librarian
    const bob = await register('acme', 'bob@example.com');
    const carl = await register('globex', 'carl@example.com');
    const book = await call('POST', '/v1/books', {
      token: ann,
      body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 },
    });
    expect(book.status).toBe(201);
    const bookPath = `/v1/books/${book.json.id}`;
    const tooLarge = JSON.stringify({ bookId: 'x'.repeat(17 * 1024) });

    // the tenant
    await answer('no tenant', 'GET', '/v1/books', { tenant: null }, [400, 'validation_failed']);
    await answer('unknown tenant', 'GET', bookPath, { tenant: 'nope' }, [404, 'tenant_not_found']);
    await answer('unknown tenant', 'POST', '/v1/members', { tenant: 'nope', body: {} }, [
      404,
      'tenant_not_found',
    ]);
    await answer('suspended tenant', 'GET', '/v1/books', { tenant: 'gone' }, [403, 'tenant_suspended']);
    await answer('suspended tenant', 'POST', '/v1/auth/login', { tenant: 'gone', body: {} }, [
      403,
      'tenant_suspended',
    ]);
    await answer('suspended tenant', 'GET', '/v1/members/me', { tenant: 'gone', token: bob }, [
      403,
      'tenant_suspended',
    ]);
    await answer(
      'readonly tenant',
      'POST',
      '/v1/members',
      { tenant: 'frozen', body: { email: 'x@example.com', name: 'X', password: 'correct horse' } },
      [423, 'tenant_readonly'],
    );

    // the token
    await answer('bad token', 'GET', bookPath, { token: 'nope' }, [401, 'invalid_token']);
    await answer('forged token', 'GET', '/v1/members/me', { token: 'a.b.c' }, [401, 'invalid_token']);
    await answer('bad token', 'POST', '/v1/loans', { token: 'a.b.c', body: { bookId: book.json.id } }, [
      401,
      'invalid_token',
    ]);
    await answer('no token', 'POST', '/v1/loans', { body: { bookId: book.json.id } }, [401, 'unauthorized']);
    await answer('no token', 'GET', '/v1/loans', {}, [401, 'unauthorized']);
    await answer('no token', 'POST', '/v1/auth/change-password', { body: {} }, [401, 'unauthorized']);
    await answer('other tenant’s token', 'GET', '/v1/members/me', { token: carl }, [403, 'tenant_mismatch']);
    await answer('other tenant’s token', 'GET', '/v1/books', { token: carl }, [403, 'tenant_mismatch']);
    await answer('other tenant’s token', 'DELETE', bookPath, { token: carl }, [403, 'tenant_mismatch']);

    // the record and the role
    await answer('unknown book', 'GET', '/v1/books/nope', {}, [404, 'book_not_found']);
    await answer('unknown book', 'POST', '/v1/loans', { token: bob, body: { bookId: 'nope' } }, [
      404,
      'book_not_found',
    ]);
    await answer('unknown book', 'PATCH', '/v1/books/nope', { token: ann, body: { copies: 2 } }, [
      404,
      'book_not_found',
    ]);
    await answer('unknown book', 'DELETE', '/v1/books/nope', { token: ann }, [404, 'book_not_found']);
    await answer('unknown loan', 'GET', '/v1/loans/nope', { token: bob }, [404, 'loan_not_found']);
    await answer('unknown loan', 'POST', '/v1/loans/nope/return', { token: bob }, [404, 'loan_not_found']);
    await answer(
      'not a librarian',
      'POST',
      '/v1/books',
      { token: bob, body: { isbn: '978-0-13-468599-1', title: 'T', author: 'A', copies: 1 } },
      [403, 'librarian_required'],
    );
    await answer('not a librarian', 'PATCH', bookPath, { token: bob, body: { copies: 2 } }, [
      403,
      'librarian_required',
    ]);
    await answer('not a librarian', 'DELETE', bookPath, { token: bob }, [403, 'librarian_required']);

    // the request
    await answer('body too large', 'POST', '/v1/loans', { token: bob, body: tooLarge }, [
      413,
      'payload_too_large',
    ]);
    await answer('body too large', 'POST', '/v1/auth/login', { body: tooLarge }, [413, 'payload_too_large']);
    await answer('body too large', 'DELETE', bookPath, { token: ann, body: tooLarge }, [
      413,
      'payload_too_large',
    ]);
    await answer('invalid field', 'POST', '/v1/books', { token: ann, body: { isbn: 'x' } }, [
      400,
      'validation_failed',
    ]);
    await answer('not JSON', 'POST', '/v1/books', { token: ann, body: 'not json' }, [400, 'bad_request']);
    await answer(
      'not JSON',
      'POST',
      '/v1/loans',
      { token: bob, body: '{"bookId":"x"}', headers: { 'Content-Type': 'text/plain' } },
      [415, 'unsupported_media_type'],
    );
    await answer(
      'a body where none is taken',
      'POST',
      '/v1/loans/nope/return',
      { token: bob, body: { a: 1 } },
      [400, 'validation_failed'],
    );
    await answer(
      'bad consistency token',
      'GET',
      bookPath,
      { headers: { 'X-Consistency-Token': 'garbage' } },
      [400, 'invalid_consistency_token'],
    );
    await answer(
      'bad consistency token',
      'GET',
      '/v1/loans',
      { token: bob, headers: { 'X-Consistency-Token': 'garbage' } },
      [400, 'invalid_consistency_token'],
    );
    await answer(
      'a page on another site',
      'POST',
      '/v1/loans',
      { token: bob, body: { bookId: book.json.id }, headers: { Origin: 'https://elsewhere.example' } },
      [403, 'origin_not_allowed'],
    );

    // the data
    const borrowed = await call('POST', '/v1/loans', {
      token: bob,
      body: { bookId: book.json.id },
      headers: { 'Idempotency-Key': 'k1' },
    });
    expect(borrowed.status).toBe(201);
    await answer(
      'key reused',
      'POST',
      '/v1/loans',
      { token: bob, body: { bookId: 'other' }, headers: { 'Idempotency-Key': 'k1' } },
      [422, 'idempotency_key_reused'],
    );
    await answer('no copy', 'POST', '/v1/loans', { token: bob, body: { bookId: book.json.id } }, [
      409,
      'no_copy_available',
    ]);
    await answer('on loan', 'DELETE', bookPath, { token: ann }, [409, 'book_on_loan']);
    await answer('on loan', 'PATCH', bookPath, { token: ann, body: { copies: 0 } }, [409, 'copies_on_loan']);
    await answer('another member’s loan', 'GET', `/v1/loans/${borrowed.json.id}`, { token: ann }, [
      404,
      'loan_not_found',
    ]);
    expect((await call('POST', `/v1/loans/${borrowed.json.id}/return`, { token: bob })).status).toBe(200);
    await answer('returned', 'POST', `/v1/loans/${borrowed.json.id}/return`, { token: bob }, [
      409,
      'already_returned',
    ]);
    await answer(
      'email taken',
      'POST',
      '/v1/members',
      { body: { email: 'bob@example.com', name: 'Bob', password: 'correct horse' } },
      [409, 'email_taken'],
    );

    // passwords
    await answer(
      'wrong password',
      'POST',
      '/v1/auth/login',
      { body: { email: 'bob@example.com', password: 'nope' } },
      [401, 'invalid_credentials'],
    );
    await answer(
      'wrong current password',
      'POST',
      '/v1/auth/change-password',
      { token: bob, body: { currentPassword: 'nope', newPassword: 'another horse' } },
      [403, 'wrong_current_password'],
    );
    for (let i = 0; i < 10; i++)
      await call('POST', '/v1/auth/login', { body: { email: 'dan@example.com', password: 'nope' } });
    await answer(
      'throttled',
      'POST',
      '/v1/auth/login',
      { body: { email: 'dan@example.com', password: 'nope' } },
      [429, 'too_many_login_attempts'],
    );

    // a revoked token: its member changed the password since
    const eve = await register('acme', 'eve@example.com');
    const changed = await call('POST', '/v1/auth/change-password', {
      token: eve,
      body: { currentPassword: 'correct horse', newPassword: 'another horse' },
    });
    expect(changed.status).toBe(204);
    await answer('revoked token', 'GET', '/v1/members/me', { token: eve }, [401, 'token_revoked']);
    await answer('revoked token', 'GET', '/v1/loans', { token: eve }, [401, 'token_revoked']);
    await answer('revoked token', 'POST', '/v1/loans', { token: eve, body: { bookId: book.json.id } }, [
      401,
      'token_revoked',
    ]);
    await answer(
      'revoked token',
      'POST',
      '/v1/auth/change-password',
      { token: eve, body: { currentPassword: 'another horse', newPassword: 'third horse' } },
      [401, 'token_revoked'],
    );
    expect(await token('acme', 'eve@example.com', 'another horse')).toBeTruthy();

    // a tenant made readonly (a move, or an operator)
    store.put('tenants/acme', '{"shard":"shard-1","status":"readonly"}');
    await answer('readonly tenant', 'POST', '/v1/loans', { token: bob, body: { bookId: book.json.id } }, [
      423,
      'tenant_readonly',
    ]);
    await answer('readonly tenant', 'DELETE', bookPath, { token: ann }, [423, 'tenant_readonly']);
    await answer(
      'readonly tenant',
      'POST',
      '/v1/auth/change-password',
      { token: bob, body: { currentPassword: 'correct horse', newPassword: 'another horse' } },
      [423, 'tenant_readonly'],
    );
    store.put('tenants/acme', '{"shard":"shard-1","status":"active"}');

    expect(await unlisted()).toEqual([]);
  });

  it('that the answers of an instance not ready, a dependency down, and a busy password check carry', async () => {
    const notLoaded = setup({ loaded: false });
    await notLoaded.answer('no config yet', 'GET', '/v1/books', {}, [503, 'config_not_loaded']);
    await notLoaded.answer('no config yet', 'POST', '/v1/auth/login', { body: {} }, [
      503,
      'config_not_loaded',
    ]);
    expect(await notLoaded.unlisted()).toEqual([]);

    const data = new MemoryDataAccess();
    data.read = async () => {
      throw new DependencyUnavailableError('mysql-replica:shard-1', 'ECONNREFUSED');
    };
    data.write = async () => {
      throw new DependencyUnavailableError('mysql-master:shard-1', 'PROTOCOL_CONNECTION_LOST', {
        outcomeUnknown: true,
      });
    };
    const down = setup({ data });
    await down.answer('database down', 'GET', '/v1/books/x', {}, [503, 'dependency_unavailable']);
    await down.answer(
      'connection lost after COMMIT',
      'POST',
      '/v1/members',
      { body: { email: 'a@example.com', name: 'A', password: 'password1' } },
      [503, 'write_outcome_unknown'],
    );
    expect(await down.unlisted()).toEqual([]);

    const busy = setup({
      passwordWork: {
        run: async () => {
          throw new PasswordWorkBusyError(2000);
        },
      },
    });
    const body = { email: 'a@example.com', name: 'A', password: 'password1' };
    await busy.answer('password checks busy', 'POST', '/v1/members', { body }, [503, 'server_busy']);
    await busy.answer(
      'password checks busy',
      'POST',
      '/v1/auth/login',
      { body: { email: body.email, password: body.password } },
      [503, 'server_busy'],
    );
    expect(await busy.unlisted()).toEqual([]);
  });
});
