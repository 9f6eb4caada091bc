import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { JwtMemberTokens } from './jwt-member-tokens.js';

const secret = 'a-secret-of-at-least-thirty-two-characters';
const principal = { tenantId: 'acme', memberId: '01JD5X8Q9W6ZV1N2M3K4H5G6F7', passwordVersion: 1 };

describe('member JWTs', () => {
  it('issue and verify', async () => {
    const tokens = new JwtMemberTokens({ secret });
    const issued = await tokens.issue(principal);
    expect(issued.expiresAt.getTime()).toBeGreaterThan(Date.now());
    expect(await tokens.verify(issued.token)).toEqual({ ok: true, principal });
  });

  it('reject other keys, issuers, audiences, algorithms, expired and exp-less tokens', async () => {
    const tokens = new JwtMemberTokens({ secret });
    const now = Math.floor(Date.now() / 1000);
    const claims = {
      sub: principal.memberId,
      tid: 'acme',
      pwv: 1,
      iss: 'shardgate',
      aud: 'shardgate-api',
      iat: now,
      exp: now + 60,
    };
    expect((await tokens.verify(await sign(claims, `${secret}x`, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, iss: 'evil' }, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, aud: 'other' }, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign(claims, secret, 'HS512'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, exp: now - 1 }, secret, 'HS256'))).ok).toBe(false);
    const { exp: _exp, ...noExp } = claims;
    expect((await tokens.verify(await sign(noExp, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, sub: 'x' }, secret, 'HS256'))).ok).toBe(false);
    const none = `${btoa('{"alg":"none","typ":"JWT"}')}.${btoa(JSON.stringify(claims))}.`.replace(/=/g, '');
    expect((await tokens.verify(none)).ok).toBe(false);
    expect((await tokens.verify('garbage')).ok).toBe(false);
  });
});
