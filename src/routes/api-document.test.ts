/**
 * What /openapi.json gives a client generator and a validator beyond each route's shapes:
 * operation ids, security, date-time formats, the media types a body is taken in, and the
 * answers of every path that no operation lists (HEAD), the readiness 503 a problem as every error.
 */
import { describe, expect, it, vi } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { createMemoryServices } from '../testing/memory-services.js';

type Operation = {
  operationId?: string;
  security?: Record<string, string[]>[];
  responses: Record<
    string,
    { description: string; headers?: Record<string, { $ref?: string }>; content?: Record<string, unknown> }
  >;
};
type Schema = { properties: Record<string, { format?: string; type?: string | string[] }> };
type Document = {
  info: { description: string };
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; headers?: Record<string, unknown> };
};

async function document(): Promise<Document> {
  const app = createApp(createMemoryServices());
  return (await (await app.request('/openapi.json')).json()) as Document;
}

const operations = (doc: Document) =>
  Object.entries(doc.paths).flatMap(([path, ops]) =>
    Object.entries(ops).map(([method, op]) => ({ where: `${method} ${path}`, op })),
  );

describe('/openapi.json', () => {
  it('is built once, at its first request, not at each (20–73 ms each: a burst emptied the load balancer)', async () => {
    const app = createApp(createMemoryServices());
    const build = vi.spyOn(app, 'getOpenAPI31Document');
    try {
      const answers = await Promise.all([1, 2, 3].map(() => app.request('/openapi.json')));
      const texts = await Promise.all(answers.map((a) => a.text()));
      expect(answers.map((a) => a.status)).toEqual([200, 200, 200]);
      expect(answers[0]!.headers.get('content-type')).toMatch(/^application\/json/);
      expect(new Set(texts).size).toBe(1);
      expect(JSON.parse(texts[0]!).openapi).toBe('3.1.0');
      expect(build).toHaveBeenCalledTimes(1);
    } finally {
      build.mockRestore();
    }
  });

  it('names its server relative to where it was served, for generators and "try it" calls', async () => {
    expect((await document()).servers?.map((s) => s.url)).toEqual(['/']);
  });

  it('gives every operation a unique camelCase operationId', async () => {
    const ids = operations(await document()).map(({ where, op }) => [where, op.operationId] as const);
    for (const [where, id] of ids) expect(id, where).toMatch(/^[a-z][a-zA-Z0-9]*$/);
    expect(new Set(ids.map(([, id]) => id)).size).toBe(ids.length);
    // stable: generated clients call these names
    expect(Object.fromEntries(ids)).toMatchObject({
      'get /v1/books': 'listBooks',
      'get /v1/books/{id}': 'getBook',
      'post /v1/books': 'createBook',
      'patch /v1/books/{id}': 'updateBook',
      'delete /v1/books/{id}': 'deleteBook',
      'post /v1/members': 'registerMember',
      'post /v1/auth/login': 'login',
    });
  });

  it('says the public book reads take a token optionally, and the token-blind routes none', async () => {
    const doc = await document();
    for (const path of ['/v1/books', '/v1/books/{id}'])
      expect(doc.paths[path]?.get?.security, path).toEqual([{}, { bearerAuth: [] }]);
    expect(doc.paths['/v1/auth/login']?.post?.security).toEqual([]);
    expect(doc.paths['/v1/members']?.post?.security).toEqual([]);
    expect(doc.paths['/v1/loans']?.get?.security).toEqual([{ bearerAuth: [] }]);
  });

  it('marks the instants as date-time', async () => {
    const { schemas } = (await document()).components;
    const fields: [string, string][] = [
      ['Member', 'createdAt'],
      ['Book', 'createdAt'],
      ['Book', 'updatedAt'],
      ['Loan', 'borrowedAt'],
      ['Loan', 'returnedAt'],
      ['MemberToken', 'expiresAt'],
      ['ConfigHealth', 'loadedAt'],
      ['ConfigHealth', 'lastChangeAt'],
      ['ConfigHealth', 'disconnectedSince'],
      ['ConfigHealth', 'refusedSince'],
    ];
    for (const [schema, field] of fields)
      expect(schemas[schema]?.properties[field]?.format, `${schema}.${field}`).toBe('date-time');
  });

  it('documents the headers of every answer on the routes outside /v1 as shared components', async () => {
    const doc = await document();
    expect(Object.keys(doc.components.headers ?? {})).toEqual(
      expect.arrayContaining(['X-Request-Id', 'X-Served-By']),
    );
    for (const { where, op } of operations(doc))
      for (const [status, response] of Object.entries(op.responses)) {
        expect(response.headers?.['X-Request-Id']?.$ref, `${where} ${status}`).toBe(
          '#/components/headers/X-Request-Id',
        );
        expect(response.headers?.['X-Served-By']?.$ref, `${where} ${status}`).toBe(
          '#/components/headers/X-Served-By',
        );
      }
  });

  it('says which bodies are taken, HEAD, and that the readiness 503 is a problem too', async () => {
    const doc = await document();
    const unsupported = doc.paths['/v1/books']?.post?.responses['415']?.description ?? '';
    expect(unsupported).toContain('application/<subtype>+json');
    expect(unsupported).toContain('application/merge-patch+json');
    expect(unsupported).toContain('charset');
    expect(doc.info.description).toContain('`HEAD`');
    expect(doc.info.description).toContain('the 503 of `GET /health/ready` too');
    expect(Object.keys(doc.paths['/health/ready']?.get?.responses['503']?.content ?? {})).toEqual([
      'application/problem+json',
    ]);
  });

  it('takes a body in each media type its 415 says it takes, and refuses the others', async () => {
    const config = new MemoryConfigStore({
      initial: {
        'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
        'tenants/acme': '{"shard":"shard-1","status":"active"}',
      },
    });
    const app = createApp(createMemoryServices({ config }));
    const login = async (contentType: string) =>
      (
        await app.request('/v1/auth/login', {
          method: 'POST',
          headers: { 'X-Tenant-ID': 'acme', 'Content-Type': contentType },
          body: JSON.stringify({ email: 'a@example.com', password: 'x' }),
        })
      ).status;
    // 401 invalid_credentials: the body was taken and read
    for (const taken of [
      'application/json',
      'application/problem+json',
      'application/merge-patch+json',
      'Application/JSON; charset=UTF-8',
      'application/json; charset=utf8',
    ])
      expect(await login(taken), taken).toBe(401);
    for (const refused of ['application/json; charset=latin1', 'text/plain', 'application/jsonx'])
      expect(await login(refused), refused).toBe(415);
  });
});
