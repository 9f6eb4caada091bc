/**
 * Books: `POST /v1/books` (librarian) 201, `GET /v1/books/{id}` (public), `GET /v1/books`
 * (`author` exact match, `cursor`, `limit` 1–100 default 20; ascending by id = creation order),
 * `PATCH` (librarian; 409 when copies would go below the copies on loan) and `DELETE`
 * (librarian; 409 while a copy is on loan).
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { createBook, deleteBook, getBook, listBooks, updateBook } from '../domain/books.js';
import { decodeCursor, listScope } from '../domain/cursor.js';
import { jsonResponse, setHeader, textBody } from '../http/response-headers.js';
import { bookVersions, cachedRead, markWrittenAndInvalidate } from './cached-read.js';
import { invalidQuery, unwrapWrite } from './respond.js';
import {
  absentWhenEmpty,
  authorQuery,
  bookBody,
  bookJson,
  bookPatchBody,
  bookSchema,
  idParams,
  jsonBody,
  jsonContent,
  optionalBearer,
  pageLimit,
  pageQuery,
  problems,
  tenantHeaders,
} from './schemas.js';
import { openapiV1, requireMember, requireWritable } from './v1-context.js';

const listQuery = z.strictObject({ author: absentWhenEmpty(authorQuery), ...pageQuery });
const bookPage = z
  .object({ items: z.array(bookSchema), nextCursor: z.string().nullable() })
  .openapi('BookPage');

export function registerBookRoutes(app: OpenAPIHono<AppEnv>): void {
  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/books',
      operationId: 'createBook',
      tags: ['books'],
      summary: 'Add a book (librarian)',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, body: jsonBody(bookBody) },
      responses: {
        201: {
          ...jsonContent(bookSchema, 'the new book'),
          headers: { Location: { description: 'the new book: /v1/books/{id}', schema: { type: 'string' } } },
        },
        ...problems('librarian_required'),
      },
    }),
    async (c) => {
      const { data } = c.get('services');
      const outcome = await createBook(data, c.get('tenant'), c.get('principal'), c.req.valid('json'));
      const book = await unwrapWrite(c, outcome);
      await markWrittenAndInvalidate(c, outcome.position, ['books']);
      setHeader(c, 'Location', `/v1/books/${book.id}`);
      return jsonResponse(c, bookJson(book), 201);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'get',
      path: '/v1/books/{id}',
      operationId: 'getBook',
      tags: ['books'],
      // public, but a token that is sent is checked (401, 403)
      security: optionalBearer,
      summary: 'One book',
      request: { headers: tenantHeaders, params: idParams },
      responses: { 200: jsonContent(bookSchema, 'the book'), ...problems('book_not_found') },
    }),
    async (c) => {
      const id = c.req.valid('param').id;
      const json = await cachedRead(
        c,
        { version: `book:${id}`, entry: `book:${id}` },
        (options) => getBook(c.get('services').data, c.get('tenant'), id, options),
        bookJson,
      );
      return jsonResponse(c, json, 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'get',
      path: '/v1/books',
      operationId: 'listBooks',
      tags: ['books'],
      // public, but a token that is sent is checked (401, 403)
      security: optionalBearer,
      summary: 'Books of the tenant, optionally by author, a page at a time',
      request: { headers: tenantHeaders, query: listQuery },
      responses: { 200: jsonContent(bookPage, 'a page of books') },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const limit = pageLimit(query.limit);
      if (typeof limit === 'string') throw invalidQuery('limit', limit);
      let afterId: string | undefined;
      if (query.cursor !== undefined) {
        const cursor = decodeCursor(query.cursor, listScope.books(c.get('tenant').id, query.author));
        if (!cursor.ok) throw invalidQuery('cursor', cursor.reason);
        afterId = cursor.id;
      }
      const pageKey = encodeURIComponent(`${query.author ?? ''}|${afterId ?? ''}|${limit}`);
      const json = await cachedRead(
        c,
        { version: 'books', entry: `books:${pageKey}` },
        async (options) => {
          const outcome = await listBooks(
            c.get('services').data,
            c.get('tenant'),
            { author: query.author, afterId, limit },
            options,
          );
          return { value: { ok: true as const, value: outcome.value }, readFrom: outcome.readFrom };
        },
        (page) => ({ items: page.items.map(bookJson), nextCursor: page.nextCursor }),
      );
      return jsonResponse(c, json, 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'patch',
      path: '/v1/books/{id}',
      operationId: 'updateBook',
      tags: ['books'],
      summary: 'Change a book (librarian)',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, params: idParams, body: jsonBody(bookPatchBody) },
      responses: {
        200: jsonContent(bookSchema, 'the changed book'),
        ...problems('librarian_required', 'book_not_found', 'copies_on_loan'),
      },
    }),
    async (c) => {
      const { data } = c.get('services');
      const outcome = await updateBook(
        data,
        c.get('tenant'),
        c.get('principal'),
        c.req.valid('param').id,
        c.req.valid('json'),
      );
      const book = await unwrapWrite(c, outcome);
      await markWrittenAndInvalidate(c, outcome.position, bookVersions(book.id));
      return jsonResponse(c, bookJson(book), 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'delete',
      path: '/v1/books/{id}',
      operationId: 'deleteBook',
      tags: ['books'],
      summary: 'Delete a book (librarian)',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, params: idParams },
      responses: {
        204: { description: 'deleted' },
        ...problems('librarian_required', 'book_not_found', 'book_on_loan'),
      },
    }),
    async (c) => {
      const outcome = await deleteBook(
        c.get('services').data,
        c.get('tenant'),
        c.get('principal'),
        c.req.valid('param').id,
      );
      await unwrapWrite(c, outcome);
      await markWrittenAndInvalidate(c, outcome.position, bookVersions(c.req.valid('param').id));
      return textBody(c, null, 204);
    },
  );
}
