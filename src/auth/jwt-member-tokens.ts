/**
 * Member tokens as JWT HS256 through `hono/jwt` (Web Crypto; runtime-neutral). The algorithm is
 * pinned on both sides — a token whose header names another `alg` (or `none`) is rejected — and
 * `iss`, `aud` and `exp` are checked; `exp` must be present (hono only checks it when it is).
 *
 * Claims: `sub` member id, `tid` tenant id, `pwv` password version, `iat`, `exp`, `iss`, `aud`.
 */
import { sign, verify } from 'hono/jwt';
import { isId } from '../domain/ids.js';
import type { IssuedToken, MemberTokens, Principal, TokenCheck } from '../domain/member-tokens.js';

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export interface JwtMemberTokensOptions {
  /** HS256 key (SHARDGATE_JWT_SECRET, at least 32 characters) */
  secret: string;
  issuer?: string;
  audience?: string;
  ttlSeconds?: number;
  now?: () => number;
}

export class JwtMemberTokens implements MemberTokens {
  private readonly secret: string;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlSeconds: number;
  private readonly now: () => number;

  constructor({
    secret,
    issuer = 'shardgate',
    audience = 'shardgate-api',
    ttlSeconds = 3600,
    now = Date.now,
  }: JwtMemberTokensOptions) {
    if (secret.length < 32) throw new Error('JWT secret must be at least 32 characters');
    this.secret = secret;
    this.issuer = issuer;
    this.audience = audience;
    this.ttlSeconds = ttlSeconds;
    this.now = now;
  }

  async issue(principal: Principal): Promise<IssuedToken> {
    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.ttlSeconds;
    const token = await sign(
      {
        sub: principal.memberId,
        tid: principal.tenantId,
        pwv: principal.passwordVersion,
        iss: this.issuer,
        aud: this.audience,
        iat,
        exp,
      },
      this.secret,
      'HS256',
    );
    return { token, expiresAt: new Date(exp * 1000) };
  }

  async verify(token: string): Promise<TokenCheck> {
    if (token.length > 2048) return { ok: false, reason: 'token too long' };
    let payload: Record<string, unknown>;
    try {
      payload = await verify(token, this.secret, { alg: 'HS256', iss: this.issuer, aud: this.audience });
    } catch (error) {
      return { ok: false, reason: error instanceof Error ? error.name : 'invalid token' };
    }
    const { sub, tid, pwv, exp } = payload;
    if (typeof exp !== 'number') return { ok: false, reason: 'exp missing' };
    if (exp * 1000 <= this.now()) return { ok: false, reason: 'token expired' };
    if (typeof sub !== 'string' || !isId(sub)) return { ok: false, reason: 'bad sub' };
    if (typeof tid !== 'string' || !TENANT_ID.test(tid)) return { ok: false, reason: 'bad tid' };
    if (typeof pwv !== 'number' || !Number.isInteger(pwv) || pwv < 1) return { ok: false, reason: 'bad pwv' };
    return { ok: true, principal: { tenantId: tid, memberId: sub, passwordVersion: pwv } };
  }
}
