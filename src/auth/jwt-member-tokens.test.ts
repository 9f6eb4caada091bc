import { sign } from 'hono/jwt';
import { describe, expect, it } from 'vitest';
import { createPromMetrics } from '../observability/prom-metrics.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { webCryptoHs256Jws } from './hs256-jws.js';
import { JwtMemberTokens } from './jwt-member-tokens.js';
import { nodeHs256Jws } from './node-hs256-jws.js';

const secret = 'a-secret-of-at-least-thirty-two-characters';
const principal = { tenantId: 'acme', memberId: '01JD5X8Q9W6ZV1N2M3K4H5G6F7', passwordVersion: 1 };

/** the claims of a valid member token issued at `now` (seconds) for a minute */
function validClaims(now: number) {
  return {
    sub: principal.memberId,
    tid: 'acme',
    pwv: 1,
    iss: 'shardgate',
    aud: 'shardgate-api',
    iat: now,
    exp: now + 60,
  };
}

it('tokens of the Web Crypto and the node:crypto JWS are accepted by both', async () => {
  const web = new JwtMemberTokens({ secret, jws: webCryptoHs256Jws });
  const node = new JwtMemberTokens({ secret, jws: nodeHs256Jws });
  expect(await node.verify((await web.issue(principal)).token)).toEqual({ ok: true, principal });
  expect(await web.verify((await node.issue(principal)).token)).toEqual({ ok: true, principal });
});

it('refuses a secret shorter than 32 characters', () => {
  for (const jws of [webCryptoHs256Jws, nodeHs256Jws]) {
    expect(() => new JwtMemberTokens({ secret: 'short', jws })).toThrow(/at least 32/);
  }
});

describe.each([
  ['Web Crypto', webCryptoHs256Jws],
  ['node:crypto', nodeHs256Jws],
])('member JWTs (%s)', (_name, jws) => {
  it('issue and verify', async () => {
    const tokens = new JwtMemberTokens({ secret, jws });
    const issued = await tokens.issue(principal);
    expect(issued.expiresAt.getTime()).toBeGreaterThan(Date.now());
    // the claims as issued: iat is kept (fast-jwt's noTimestamp would strip it)
    const claims = JSON.parse(Buffer.from(issued.token.split('.')[1]!, 'base64url').toString('utf8'));
    expect(Object.keys(claims).sort()).toEqual(['aud', 'exp', 'iat', 'iss', 'pwv', 'sub', 'tid']);
    expect(await tokens.verify(issued.token)).toEqual({ ok: true, principal });
  });

  it('accept one spelling of a signature: another with the same bytes (unused low bits set) is refused', async () => {
    const tokens = new JwtMemberTokens({ secret, jws });
    const { token } = await tokens.issue(principal);
    const signature = token.slice(token.lastIndexOf('.') + 1);
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(signature.at(-1)!);
    expect(last % 4).toBe(0);
    for (let bits = 1; bits < 4; bits++) {
      const other = `${token.slice(0, -1)}${alphabet[last + bits]}`;
      // the same bytes: a decoder cannot tell them apart
      expect(Buffer.from(other.slice(other.lastIndexOf('.') + 1), 'base64url')).toEqual(
        Buffer.from(signature, 'base64url'),
      );
      expect(await tokens.verify(other)).toMatchObject({ ok: false });
    }
    expect((await tokens.verify(token)).ok).toBe(true);
  });

  it('expire by the instance clock, and accept a token issued a little "in the future"', async () => {
    let now = Date.now();
    const tokens = new JwtMemberTokens({ secret, jws, ttlSeconds: 60, now: () => now });
    const issued = await tokens.issue(principal);
    now -= 5000; // this instance's clock is 5 s behind the issuer's
    expect((await tokens.verify(issued.token)).ok).toBe(true);
    now += 5000 + 60_000;
    expect(await tokens.verify(issued.token)).toMatchObject({ ok: false, reason: 'token expired' });
  });

  it('say why a token of an issuer whose clock is ahead is refused: a warning with the offset, a counter by reason', async () => {
    const { logger, lines } = recordingLogger();
    const metrics = createPromMetrics();
    let now = Math.floor(Date.now() / 1000) * 1000;
    const issuer = new JwtMemberTokens({ secret, jws, now: () => now + 300_000 });
    const tokens = new JwtMemberTokens({ secret, jws, now: () => now, logger, metrics });
    const { token } = await issuer.issue(principal);
    expect(await tokens.verify(token)).toEqual({ ok: false, reason: 'iat in the future' });
    expect(await tokens.verify(token)).toEqual({ ok: false, reason: 'iat in the future' });
    // one line (limited), at warn, naming the offset and this clock; no token, no other claim
    const warned = lines.filter((l) => l.level === 'warn');
    expect(warned).toHaveLength(1);
    expect(warned[0]!.obj).toMatchObject({ claim: 'iat', aheadSeconds: 300, leewaySeconds: 60 });
    expect(warned[0]!.msg).toMatch(/300 s ahead of this instance's clock.*clock may be behind/);
    const logged = JSON.stringify(lines);
    for (const secretish of [token, token.split('.')[2]!, principal.memberId, secret, 'acme'])
      expect(logged).not.toContain(secretish);
    // nbf too, and a token without iat whose exp is beyond the lifetime
    now += 120_000;
    const nowSeconds = Math.floor(now / 1000);
    await tokens.verify(await sign({ ...validClaims(nowSeconds), nbf: nowSeconds + 120 }, secret, 'HS256'));
    const { iat: _iat, ...noIat } = validClaims(nowSeconds);
    await tokens.verify(await sign({ ...noIat, exp: nowSeconds + 3600 + 300 }, secret, 'HS256'));
    await tokens.verify(await sign({ ...validClaims(nowSeconds), exp: nowSeconds - 1 }, secret, 'HS256'));
    await tokens.verify('a.b.c');
    const { body } = await metrics.render();
    const count = (reason: string) =>
      Number(new RegExp(`auth_token_refusals_total\\{reason="${reason}"\\} (\\d+)`).exec(body)?.[1] ?? 0);
    expect(
      ['iat_in_future', 'nbf_in_future', 'exp_beyond_lifetime', 'expired', 'malformed'].map(count),
    ).toEqual([2, 1, 1, 1, 1]);
  });

  it('reject other keys, issuers, audiences, algorithms, expired and exp-less tokens', async () => {
    const tokens = new JwtMemberTokens({ secret, jws });
    const now = Math.floor(Date.now() / 1000);
    const claims = validClaims(now);
    expect((await tokens.verify(await sign(claims, secret, 'HS256'))).ok).toBe(true);
    expect((await tokens.verify(await sign(claims, `${secret}x`, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, iss: 'evil' }, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, aud: 'other' }, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign(claims, secret, 'HS512'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, exp: now - 1 }, secret, 'HS256'))).ok).toBe(false);
    const { exp: _exp, ...noExp } = claims;
    expect((await tokens.verify(await sign(noExp, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, sub: 'x' }, secret, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, pwv: 0 }, secret, 'HS256'))).ok).toBe(false);
    // validly signed, but not as this API issues them: a lifetime beyond its own, not yet valid
    expect(
      await tokens.verify(await sign({ ...claims, exp: now + 10 * 365 * 86400 }, secret, 'HS256')),
    ).toEqual({
      ok: false,
      reason: 'exp beyond the token lifetime',
    });
    expect(await tokens.verify(await sign({ ...claims, nbf: now + 86400 }, secret, 'HS256'))).toEqual({
      ok: false,
      reason: 'nbf in the future',
    });
    expect(await tokens.verify(await sign({ ...claims, iat: now + 86400 }, secret, 'HS256'))).toEqual({
      ok: false,
      reason: 'iat in the future',
    });
    expect((await tokens.verify(await sign({ ...claims, nbf: now - 10 }, secret, 'HS256'))).ok).toBe(true);
    const none = `${btoa('{"alg":"none","typ":"JWT"}')}.${btoa(JSON.stringify(claims))}.`.replace(/=/g, '');
    expect((await tokens.verify(none)).ok).toBe(false);
    expect((await tokens.verify('garbage')).ok).toBe(false);
    expect((await tokens.verify('a.b.c')).ok).toBe(false);
  });
});

describe.each([
  ['Web Crypto', webCryptoHs256Jws],
  ['node:crypto', nodeHs256Jws],
])('member JWTs across a secret rotation (%s)', (_name, jws) => {
  const other = 'the-other-secret-of-a-rotation-of-32-characters';

  it('verify a token of the accepted secret, and sign with the current one only', async () => {
    const before = new JwtMemberTokens({ secret: other, jws });
    const after = new JwtMemberTokens({ secret, acceptedSecret: other, jws });
    expect(await after.verify((await before.issue(principal)).token)).toEqual({ ok: true, principal });
    // and the other way round (phase one: accept the next secret, still sign with this one)
    const phaseOne = new JwtMemberTokens({ secret: other, acceptedSecret: secret, jws });
    const issued = (await after.issue(principal)).token;
    expect(await phaseOne.verify(issued)).toEqual({ ok: true, principal });
    // signed with the current secret: the accepted one alone does not verify it
    expect((await before.verify(issued)).ok).toBe(false);
    expect((await new JwtMemberTokens({ secret, jws }).verify(issued)).ok).toBe(true);
  });

  it('keep HS256 pinned and every claim checked under the accepted secret', async () => {
    const tokens = new JwtMemberTokens({ secret, acceptedSecret: other, jws });
    const now = Math.floor(Date.now() / 1000);
    const claims = validClaims(now);
    expect((await tokens.verify(await sign(claims, other, 'HS256'))).ok).toBe(true);
    expect((await tokens.verify(await sign(claims, other, 'HS512'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, iss: 'evil' }, other, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign({ ...claims, exp: now - 1 }, other, 'HS256'))).ok).toBe(false);
    expect((await tokens.verify(await sign(claims, `${other}x`, 'HS256'))).ok).toBe(false);
  });

  it('refuse an accepted secret shorter than 32 characters', () => {
    expect(() => new JwtMemberTokens({ secret, acceptedSecret: 'short', jws })).toThrow(/at least 32/);
  });
});
