/**
 * Member access tokens (JWT HS256; src/auth/jwt-member-tokens.ts). A token names its tenant, its
 * member and the member's password version at issue time: it is valid only with the same
 * `X-Tenant-ID` (else 403) and only while the password version is unchanged (else 401).
 */
export interface Principal {
  tenantId: string;
  memberId: string;
  passwordVersion: number;
}

export interface IssuedToken {
  token: string;
  expiresAt: Date;
}

export type TokenCheck = { ok: true; principal: Principal } | { ok: false; reason: string };

export interface MemberTokens {
  issue(principal: Principal): Promise<IssuedToken>;
  /** signature, `alg`, `iss`, `aud`, `exp` and claim shapes checked; never throws */
  verify(token: string): Promise<TokenCheck>;
}
