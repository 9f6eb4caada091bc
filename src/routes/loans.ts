/**
 * Loans: `POST /v1/loans {bookId}` → 201 with `Location: /v1/loans/{id}` (404 unknown book, 409
 * no free copy), `POST /v1/loans/{id}/return` → 200 (borrower only: another member's loan answers
 * 404, as if it did not exist; 409 when already returned), `GET /v1/loans/{id}` one of the
 * caller's loans (404 likewise), `GET /v1/loans` the caller's own loans, newest first.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { decodeCursor, listScope } from '../domain/cursor.js';
import { borrowBook, getLoan, listLoans, returnLoan } from '../domain/loans.js';
import { jsonResponse, setHeader } from '../http/response-headers.js';
import { bookVersions, markWrittenAndInvalidate } from './cached-read.js';
import { invalidQuery, markRead, readOptions, unwrap, unwrapWrite } from './respond.js';
import {
  idParams,
  idSchema,
  jsonBody,
  jsonContent,
  loanJson,
  loanSchema,
  pageLimit,
  pageQuery,
  problems,
  tenantHeaders,
} from './schemas.js';
import { openapiV1, requireMember, requireWritable } from './v1-context.js';

const borrowBody = z.strictObject({ bookId: idSchema }).openapi('Borrow');
const listQuery = z.strictObject(pageQuery);
const loanPage = z
  .object({ items: z.array(loanSchema), nextCursor: z.string().nullable() })
  .openapi('LoanPage');

export function registerLoanRoutes(app: OpenAPIHono<AppEnv>): void {
  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/loans',
      operationId: 'createLoan',
      tags: ['loans'],
      summary: 'Borrow a copy of a book',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, body: jsonBody(borrowBody) },
      responses: {
        201: {
          ...jsonContent(loanSchema, 'the loan; queues a receipt email'),
          headers: { Location: { description: 'the new loan: /v1/loans/{id}', schema: { type: 'string' } } },
        },
        ...problems('book_not_found', 'no_copy_available'),
      },
    }),
    async (c) => {
      const { data } = c.get('services');
      const outcome = await borrowBook(data, c.get('tenant'), c.get('principal'), c.req.valid('json').bookId);
      const loan = await unwrapWrite(c, outcome);
      // a loan changes the book's availability, which its cached GET and list pages show
      await markWrittenAndInvalidate(c, outcome.position, bookVersions(loan.bookId));
      setHeader(c, 'Location', `/v1/loans/${loan.id}`);
      return jsonResponse(c, loanJson(loan), 201);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/loans/{id}/return',
      operationId: 'returnLoan',
      tags: ['loans'],
      summary: 'Return a loan (the borrower only)',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, params: idParams },
      responses: {
        200: jsonContent(loanSchema, 'the returned loan; queues a return email'),
        ...problems('loan_not_found', 'already_returned'),
      },
    }),
    async (c) => {
      const { data } = c.get('services');
      const outcome = await returnLoan(data, c.get('tenant'), c.get('principal'), c.req.valid('param').id);
      const loan = await unwrapWrite(c, outcome);
      await markWrittenAndInvalidate(c, outcome.position, bookVersions(loan.bookId));
      return jsonResponse(c, loanJson(loan), 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'get',
      path: '/v1/loans/{id}',
      operationId: 'getLoan',
      tags: ['loans'],
      summary: "One of the calling member's loans",
      security: [{ bearerAuth: [] }],
      middleware: [requireMember] as const,
      request: { headers: tenantHeaders, params: idParams },
      responses: { 200: jsonContent(loanSchema, 'the loan'), ...problems('loan_not_found') },
    }),
    async (c) => {
      const outcome = await getLoan(
        c.get('services').data,
        c.get('tenant'),
        c.get('principal'),
        c.req.valid('param').id,
        readOptions(c),
      );
      markRead(c, outcome.readFrom);
      return jsonResponse(c, loanJson(unwrap(outcome.value)), 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'get',
      path: '/v1/loans',
      operationId: 'listLoans',
      tags: ['loans'],
      summary: "The calling member's loans, newest first",
      security: [{ bearerAuth: [] }],
      middleware: [requireMember] as const,
      request: { headers: tenantHeaders, query: listQuery },
      responses: { 200: jsonContent(loanPage, 'a page of loans') },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const limit = pageLimit(query.limit);
      if (typeof limit === 'string') throw invalidQuery('limit', limit);
      let beforeId: string | undefined;
      if (query.cursor !== undefined) {
        const scope = listScope.loans(c.get('tenant').id, c.get('principal').memberId);
        const cursor = decodeCursor(query.cursor, scope);
        if (!cursor.ok) throw invalidQuery('cursor', cursor.reason);
        beforeId = cursor.id;
      }
      const outcome = await listLoans(
        c.get('services').data,
        c.get('tenant'),
        c.get('principal'),
        { beforeId, limit },
        readOptions(c),
      );
      markRead(c, outcome.readFrom);
      const page = unwrap(outcome.value);
      return jsonResponse(c, { items: page.items.map(loanJson), nextCursor: page.nextCursor }, 200);
    },
  );
}
