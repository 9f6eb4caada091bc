/**
 * `POST /v1/auth/login` → `{token, expiresAt}` (401 `invalid_credentials`, the same answer for an
 * unknown email and a wrong password; 429 `too_many_login_attempts` with `Retry-After` once the
 * account has had too many failures, or for 1 s while too many of its checks are in flight, see
 * auth/login-throttle.ts) and `POST /v1/auth/change-password`
 * (Bearer) → 204; every older token stops working and a "password changed" email is queued. A
 * wrong `currentPassword` counts against the same per-account throttle as a failed login.
 */
import { createRoute, type OpenAPIHono, z } from '@hono/zod-openapi';
import type { AppEnv } from '../app-env.js';
import { LOGIN_THROTTLE_POLICY, loginAccount } from '../auth/login-throttle.js';
import { changePassword, login } from '../domain/members.js';
import { jsonResponse, textBody } from '../http/response-headers.js';
import { markWrittenAndInvalidate } from './cached-read.js';
import { markRead, unwrap, unwrapWrite } from './respond.js';
import { dateTime, email, jsonBody, jsonContent, password, problems, tenantHeaders } from './schemas.js';
import { tooManyLoginAttempts } from './too-many-login-attempts.js';
import { openapiV1, requireMember, requireWritable } from './v1-context.js';

const loginBody = z.strictObject({ email, password: z.string().min(1).max(128) }).openapi('Login');
const tokenSchema = z.object({ token: z.string(), expiresAt: dateTime }).openapi('MemberToken');
const changePasswordBody = z
  .strictObject({ currentPassword: z.string().min(1).max(128), newPassword: password })
  // the same password again would revoke every token and mail "password changed" for nothing;
  // compared as hashed (NFKC): a full-width or decomposed spelling of it is the same password
  .refine((b) => b.newPassword.normalize('NFKC') !== b.currentPassword.normalize('NFKC'), {
    path: ['newPassword'],
    message: 'must differ from currentPassword',
  })
  .openapi('ChangePassword');

const { maxFailures, windowMs } = LOGIN_THROTTLE_POLICY;

export function registerAuthRoutes(app: OpenAPIHono<AppEnv>): void {
  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/auth/login',
      operationId: 'login',
      tags: ['auth'],
      // ignores a Bearer token (v1-context.ts)
      security: [],
      summary: 'Log in with email and password',
      description:
        `After ${maxFailures} failed logins of one account (tenant + email, known or not) within ` +
        `${windowMs / 60_000} minutes, every login of that account answers 429 with Retry-After ` +
        'until those minutes have passed, even with the right password; a successful login clears the count. ' +
        `While failures and logins of the account still being checked together reach ${maxFailures}, a further ` +
        'one answers 429 with Retry-After: 1.',
      request: { headers: tenantHeaders, body: jsonBody(loginBody) },
      responses: {
        200: jsonContent(tokenSchema, 'a member token (JWT HS256) and when it expires'),
        // a login looks at no Bearer token (v1-context.ts): its only 401 is of the credentials
        ...problems('invalid_credentials', 'too_many_login_attempts', 'server_busy'),
      },
    }),
    async (c) => {
      const services = c.get('services');
      const input = c.req.valid('json');
      // Before the password is verified: a throttled attempt costs no hashing and tells nothing.
      const admission = await services.loginThrottle.admit(loginAccount(c.get('tenant').id, input.email));
      if (!admission.admitted) throw tooManyLoginAttempts(admission);
      // login settles the attempt: the only failure of a login is invalid_credentials
      const outcome = await login(services, c.get('tenant'), input, admission.attempt);
      markRead(c, outcome.readFrom);
      const issued = unwrap(outcome.value);
      return jsonResponse(c, { token: issued.token, expiresAt: issued.expiresAt.toISOString() }, 200);
    },
  );

  openapiV1(
    app,
    createRoute({
      method: 'post',
      path: '/v1/auth/change-password',
      operationId: 'changePassword',
      tags: ['auth'],
      summary: "Change the calling member's password",
      description:
        'A wrong currentPassword counts as a failed login of the account: after ' +
        `${maxFailures} failures within ${windowMs / 60_000} minutes (logins and password changes together) ` +
        'the change answers 429 with Retry-After, without checking the password (Retry-After: 1 while ' +
        `failures and checks of the account in flight together reach ${maxFailures}). newPassword must differ ` +
        'from currentPassword.',
      security: [{ bearerAuth: [] }],
      middleware: [requireWritable, requireMember] as const,
      request: { headers: tenantHeaders, body: jsonBody(changePasswordBody) },
      responses: {
        204: { description: 'changed; older tokens and the old password stop working' },
        ...problems('wrong_current_password', 'too_many_login_attempts', 'server_busy'),
      },
    }),
    async (c) => {
      const services = c.get('services');
      const tenant = c.get('tenant');
      const outcome = await changePassword(
        services,
        tenant,
        c.get('principal'),
        c.req.valid('json'),
        async (email) => {
          const admission = await services.loginThrottle.admit(loginAccount(tenant.id, email));
          if (!admission.admitted) throw tooManyLoginAttempts(admission);
          return admission.attempt;
        },
      );
      await unwrapWrite(c, outcome);
      await markWrittenAndInvalidate(c, outcome.position, [`member:${c.get('principal').memberId}`]);
      return textBody(c, null, 204);
    },
  );
}
