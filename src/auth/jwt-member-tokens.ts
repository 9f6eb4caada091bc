/**
 * Member tokens: JWT HS256 (the JWS layer is an `Hs256Jws`, src/auth/hs256-jws.ts: the algorithm
 * pinned, `none` and every other `alg` rejected). Checked here, for both JWS implementations
 * alike: `iss`, `aud`, `exp` (which must be present, in the future by this instance's clock, and
 * no further ahead than tokens are issued for: a longer-lived token was not made here), `nbf` and
 * `iat` where present (not ahead of this clock by more than CLOCK_SKEW_SECONDS), and the shape of
 * `sub`, `tid` and `pwv`.
 *
 * Claims: `sub` member id, `tid` tenant id, `pwv` password version, `iat`, `exp`, `iss`, `aud`.
 *
 * Key rotation: tokens are signed with `secret` only; `acceptedSecret`
 * (SHARDGATE_JWT_SECRET_ACCEPTED) verifies a token the first one does not, still HS256 only and
 * with every claim check above, so instances of a rolling secret change accept each other's tokens.
 */
import { isId } from '../domain/ids.js';
import type { IssuedToken, MemberTokens, Principal, TokenCheck } from '../domain/member-tokens.js';
import { type Hs256Jws, webCryptoHs256Jws } from './hs256-jws.js';

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** an HS256 signature (32 bytes) as base64url without padding: 43 characters, the last one's 2 low bits 0 */
const CANONICAL_HS256_SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** how far another instance's clock may run ahead of this one's */
const CLOCK_SKEW_SECONDS = 60;

export interface JwtMemberTokensOptions {
  /** HS256 key (SHARDGATE_JWT_SECRET, at least 32 characters) */
  secret: string;
  /** a second HS256 key that verifies but never signs (key rotation; at least 32 characters) */
  acceptedSecret?: string;
  /** the JWS implementation for that key; the default is runtime-neutral (Web Crypto) */
  jws?: (secret: string) => Hs256Jws;
  issuer?: string;
  audience?: string;
  ttlSeconds?: number;
  now?: () => number;
}

export class JwtMemberTokens implements MemberTokens {
  private readonly jws: Hs256Jws;
  private readonly acceptedJws: Hs256Jws | undefined;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlSeconds: number;
  private readonly now: () => number;

  constructor({
    secret,
    acceptedSecret,
    jws = webCryptoHs256Jws,
    issuer = 'shardgate',
    audience = 'shardgate-api',
    ttlSeconds = 3600,
    now = Date.now,
  }: JwtMemberTokensOptions) {
    this.jws = jws(secret);
    this.acceptedJws = acceptedSecret === undefined ? undefined : jws(acceptedSecret);
    this.issuer = issuer;
    this.audience = audience;
    this.ttlSeconds = ttlSeconds;
    this.now = now;
  }

  async issue(principal: Principal): Promise<IssuedToken> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.ttlSeconds;
    const token = await this.jws.sign({
      sub: principal.memberId,
      tid: principal.tenantId,
      pwv: principal.passwordVersion,
      iss: this.issuer,
      aud: this.audience,
      iat,
      exp,
    });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > 2048) return { ok: false, reason: 'token too long' };
    // one spelling per token: base64url leaves the last character's low bits unused, and a
    // decoder ignores them, so 4 spellings of one signature would verify (harmless for the
    // signature, but a token string kept as a key, in a log search or a denylist, would differ)
    if (!CANONICAL_HS256_SIGNATURE.test(token.slice(token.lastIndexOf('.') + 1)))
      return { ok: false, reason: 'signature not in canonical base64url' };
    let payload: Record<string, unknown>;
    try {
      payload = await this.jws.verify(token);
    } catch (error) {
      // the current key's verdict is the one told: a token neither key verifies is its failure
      const accepted = await this.acceptedJws?.verify(token).catch(() => undefined);
      if (!accepted) return { ok: false, reason: error instanceof Error ? error.name : 'invalid token' };
      payload = accepted;
    }
    const { sub, tid, pwv, exp, iss, aud, nbf, iat } = payload;
    if (iss !== this.issuer) return { ok: false, reason: 'bad iss' };
    if (!(Array.isArray(aud) ? aud.includes(this.audience) : aud === this.audience))
      return { ok: false, reason: 'bad aud' };
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return { ok: false, reason: 'exp missing' };
    const nowSeconds = this.now() / 1000;
    if (exp <= nowSeconds) return { ok: false, reason: 'token expired' };
    if (exp > nowSeconds + this.ttlSeconds + CLOCK_SKEW_SECONDS)
      return { ok: false, reason: 'exp beyond the token lifetime' };
    for (const [name, value] of [
      ['nbf', nbf],
      ['iat', iat],
    ] as const) {
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) return { ok: false, reason: `bad ${name}` };
      if (value > nowSeconds + CLOCK_SKEW_SECONDS) return { ok: false, reason: `${name} in the future` };
    }
    if (typeof sub !== 'string' || !isId(sub)) return { ok: false, reason: 'bad sub' };
    if (typeof tid !== 'string' || !TENANT_ID.test(tid)) return { ok: false, reason: 'bad tid' };
    if (typeof pwv !== 'number' || !Number.isInteger(pwv) || pwv < 1) return { ok: false, reason: 'bad pwv' };
    return { ok: true, principal: { tenantId: tid, memberId: sub, passwordVersion: pwv } };
  }
}
