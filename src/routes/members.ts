/**
 * `POST /v1/members` (register; the tenant's first member is its librarian; 409 on a duplicate
 * email) and `GET /v1/members/me` (Bearer). See src/domain/members.ts for the rules.
 */
import { createRoute, type OpenAPIHono } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { getMe, registerMember } from '../domain/members.js';
import { jsonResponse, setHeader } from '../http/response-headers.js';
import { cachedRead } from './cached-read.js';
import { CACHE_HEADER } from './outcome-headers.js';
import { markRead, markWritten, unwrap, unwrapWrite } from './respond.js';
import {
  jsonBody,
  jsonContent,
  memberJson,
  memberSchema,
  problems,
  registerBody,
  tenantHeaders,
} from './schemas.js';
import { openapiV1, requireMember, requireWritable } from './v1-context.js';

export function registerMemberRoutes(app: OpenAPIHono<AppEnv>): void {
  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/members',
      operationId: 'registerMember',
      tags: ['members'],
      // ignores a Bearer token (v1-context.ts)
      security: [],
      summary: 'Register a member (the first member of a tenant becomes its librarian)',
      middleware: [requireWritable] as const,
      request: { headers: tenantHeaders, body: jsonBody(registerBody) },
      responses: {
        201: jsonContent(memberSchema, 'the new member; queues a welcome email'),
        // a registration looks at no Bearer token (v1-context.ts): no 401
        ...problems('email_taken', 'server_busy', {
          // a repeat of an Idempotency-Key compares the password it was first sent with
          too_many_login_attempts:
            'an Idempotency-Key sent again for this address while its account is throttled: a repeat is a password check (one with another body counts as a failed login); refused until `Retry-After`',
        }),
      },
    }),
    async (c) => {
      const outcome = await registerMember(c.get('services'), c.get('tenant'), c.req.valid('json'));
      const member = await unwrapWrite(c, outcome);
      await markWritten(c, outcome.position);
      return jsonResponse(c, memberJson(member), 201);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'get',
      path: '/v1/members/me',
      operationId: 'getCurrentMember',
      tags: ['members'],
      summary: 'The calling member',
      security: [{ bearerAuth: [] }],
      middleware: [requireMember] as const,
      request: { headers: tenantHeaders },
      responses: {
        200: jsonContent(memberSchema, 'the member the token belongs to'),
      },
    }),
    async (c) => {
      const principal = c.get('principal');
      const load = () => getMe(c.get('services'), c.get('tenant'), principal);
      // The entry is per password version: concurrent misses share one load (read-cache.ts), and
      // a load for a revoked token answers REVOKED, which a valid token's caller must not get.
      // Only a row read on the master is kept: the load ignores the read floor (it reads the
      // master, a replica only while the master is down), so a replica's row could be older than
      // the floor the entry would claim.
      const json = await cachedRead(
        c,
        {
          version: `member:${principal.memberId}`,
          entry: `member:${principal.memberId}:pwv${principal.passwordVersion}`,
        },
        load,
        (member) => ({ member: memberJson(member), pwv: member.passwordVersion }),
        { keepIf: (readFrom) => readFrom === 'master' },
      );
      // an entry of another password version never answers: the database decides (revoked → 401)
      if (json.pwv === principal.passwordVersion) return jsonResponse(c, json.member, 200);
      const outcome = await load();
      markRead(c, outcome.readFrom);
      setHeader(c, CACHE_HEADER, 'MISS');
      return jsonResponse(c, memberJson(unwrap(outcome.value)), 200);
    },
  );
}
