/**
 * Member tokens: JWT HS256 (the JWS layer is an `Hs256Jws`, src/auth/hs256-jws.ts: the algorithm
 * pinned, `none` and every other `alg` rejected). Checked here, for both JWS implementations
 * alike: `iss`, `aud`, `exp` (which must be present, in the future by this instance's clock, and
 * no further ahead than tokens are issued for: a longer-lived token was not made here), `nbf` and
 * `iat` where present (not ahead of this clock by more than CLOCK_SKEW_SECONDS), and the shape of
 * `sub`, `tid` and `pwv`.
 *
 * Clocks: tokens are issued by one instance and checked by another, each by its own clock. An
 * instance whose clock is more than CLOCK_SKEW_SECONDS behind the issuer's refuses its fresh
 * tokens (`iat` in the future; `exp` beyond the lifetime when there is no `iat`): behind a
 * round-robin balancer about half of a member's requests answered 401 `invalid_token`, and
 * nothing said why (an outside check under libfaketime). Such a refusal is now logged as a
 * warning (at most one a minute, with how many it stands for) naming the claim and by how many
 * seconds it is ahead of this clock, and every refusal is counted by reason
 * (`auth_token_refusals_total{reason}`). The leeway stays 60 s: widened, a token issued by an
 * instance running ahead would outlive its lifetime on the others by as much. Revocation does
 * not compare times: a password change moves the member's password version, which every token
 * names (`pwv`), so a token issued after a change by an instance whose clock is behind is valid.
 * No token, secret or claim other than the times is logged.
 *
 * Claims: `sub` member id, `tid` tenant id, `pwv` password version, `iat`, `exp`, `iss`, `aud`.
 *
 * Key rotation: tokens are signed with `secret` only; `acceptedSecret`
 * (SHARDGATE_JWT_SECRET_ACCEPTED) verifies a token the first one does not, still HS256 only and
 * with every claim check above, so instances of a rolling secret change accept each other's tokens.
 */
import { isId } from '../domain/ids.js';
import type { IssuedToken, MemberTokens, Principal, TokenCheck } from '../domain/member-tokens.js';
import type { Logger } from '../observability/logger.js';
import type { CounterHandle, Metrics } from '../observability/metrics.js';
import { WarnLimiter } from '../observability/warn-limiter.js';
import { type Hs256Jws, webCryptoHs256Jws } from './hs256-jws.js';

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** a JWS in compact form: three dot-separated base64url parts */
const JWS_COMPACT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** an HS256 signature (32 bytes) as base64url without padding: 43 characters, the last one's 2 low bits 0 */
const CANONICAL_HS256_SIGNATURE = /^[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048]$/;
/** how far another instance's clock may run ahead of this one's (docs/http-api.md, tokens) */
export const CLOCK_SKEW_SECONDS = 60;
/** at most one warning about time claims in this long */
const CLOCK_WARN_EVERY_MS = 60_000;

/** the `reason` label of `auth_token_refusals_total` */
export type TokenRefusal =
  | 'malformed'
  | 'signature'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'exp_beyond_lifetime'
  | 'iat_in_future'
  | 'nbf_in_future'
  | 'claims';

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
  /** where a refusal for a time claim is warned about (none: not logged) */
  logger?: Logger;
  /** where refusals are counted (none: not counted) */
  metrics?: Metrics;
}

export class JwtMemberTokens implements MemberTokens {
  private readonly jws: Hs256Jws;
  private readonly acceptedJws: Hs256Jws | undefined;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly ttlSeconds: number;
  private readonly now: () => number;
  private readonly clockWarnings: WarnLimiter | undefined;
  private readonly refusals: CounterHandle | undefined;

  constructor({
    secret,
    acceptedSecret,
    jws = webCryptoHs256Jws,
    issuer = 'shardgate',
    audience = 'shardgate-api',
    ttlSeconds = 3600,
    now = Date.now,
    logger,
    metrics,
  }: JwtMemberTokensOptions) {
    this.jws = jws(secret);
    this.acceptedJws = acceptedSecret === undefined ? undefined : jws(acceptedSecret);
    this.issuer = issuer;
    this.audience = audience;
    this.ttlSeconds = ttlSeconds;
    this.now = now;
    this.clockWarnings = logger && new WarnLimiter(logger, CLOCK_WARN_EVERY_MS);
    this.refusals = metrics?.counter({
      name: 'auth_token_refusals_total',
      help: 'member tokens refused (401 invalid_token) by reason: malformed, signature, issuer, audience, expired, exp_beyond_lifetime, iat_in_future, nbf_in_future (these two and exp_beyond_lifetime: the issuer clock ahead of this one by more than 60 s), claims',
      labelNames: ['reason'],
    });
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
    const check = await this.check(token);
    if (!check.ok) this.refusals?.inc({ reason: check.refusal });
    return check.ok ? check : { ok: false, reason: check.reason };
  }

  /** a time claim (by `aheadSeconds` of this clock) refused the token: said, under a limiter */
  private timeRefused(claim: 'iat' | 'nbf' | 'exp', aheadSeconds: number): void {
    this.clockWarnings?.warn(
      { claim, aheadSeconds: Math.round(aheadSeconds), leewaySeconds: CLOCK_SKEW_SECONDS },
      claim === 'exp'
        ? `member token refused: its exp is ${Math.round(aheadSeconds)} s beyond the token lifetime from this instance's clock; the issuing instance's clock may be ahead, or this instance's clock behind`
        : `member token refused: its ${claim} is ${Math.round(aheadSeconds)} s ahead of this instance's clock (leeway ${CLOCK_SKEW_SECONDS} s); this instance's clock may be behind the issuing instance's`,
    );
  }

  private async check(
    token: string,
  ): Promise<{ ok: true; principal: Principal } | { ok: false; reason: string; refusal: TokenRefusal }> {
    const refuse = (refusal: TokenRefusal, reason: string) => ({ ok: false as const, reason, refusal });
    if (token.length > 2048) return refuse('malformed', 'token too long');
    if (!JWS_COMPACT.test(token)) return refuse('malformed', 'not three dot-separated base64url parts');
    // one spelling per token: base64url leaves the last character's low bits unused, and a
    // decoder ignores them, so 4 spellings of one signature would verify (harmless for the
    // signature, but a token string kept as a key, in a log search or a denylist, would differ)
    if (!CANONICAL_HS256_SIGNATURE.test(token.slice(token.lastIndexOf('.') + 1)))
      return refuse('malformed', 'signature not in canonical base64url');
    let payload: Record<string, unknown>;
    try {
      payload = await this.jws.verify(token);
    } catch (error) {
      // the current key's verdict is the one told: a token neither key verifies is its failure
      const accepted = await this.acceptedJws?.verify(token).catch(() => undefined);
      if (!accepted) return refuse('signature', error instanceof Error ? error.name : 'invalid token');
      payload = accepted;
    }
    const { sub, tid, pwv, exp, iss, aud, nbf, iat } = payload;
    if (iss !== this.issuer) return refuse('issuer', 'bad iss');
    if (!(Array.isArray(aud) ? aud.includes(this.audience) : aud === this.audience))
      return refuse('audience', 'bad aud');
    if (typeof exp !== 'number' || !Number.isFinite(exp)) return refuse('claims', 'exp missing');
    const nowSeconds = this.now() / 1000;
    if (exp <= nowSeconds) return refuse('expired', 'token expired');
    // before the lifetime's check: a token of an issuer whose clock is ahead fails both, and
    // `iat` says it plainly
    for (const [name, value] of [
      ['nbf', nbf],
      ['iat', iat],
    ] as const) {
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isFinite(value)) return refuse('claims', `bad ${name}`);
      if (value > nowSeconds + CLOCK_SKEW_SECONDS) {
        this.timeRefused(name, value - nowSeconds);
        return refuse(name === 'iat' ? 'iat_in_future' : 'nbf_in_future', `${name} in the future`);
      }
    }
    if (exp > nowSeconds + this.ttlSeconds + CLOCK_SKEW_SECONDS) {
      this.timeRefused('exp', exp - this.ttlSeconds - nowSeconds);
      return refuse('exp_beyond_lifetime', 'exp beyond the token lifetime');
    }
    if (typeof sub !== 'string' || !isId(sub)) return refuse('claims', 'bad sub');
    if (typeof tid !== 'string' || !TENANT_ID.test(tid)) return refuse('claims', 'bad tid');
    if (typeof pwv !== 'number' || !Number.isInteger(pwv) || pwv < 1) return refuse('claims', 'bad pwv');
    return { ok: true, principal: { tenantId: tid, memberId: sub, passwordVersion: pwv } };
  }
}
