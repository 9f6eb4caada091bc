/**
 * The JWS layer under member tokens: HS256 and nothing else. The algorithm is pinned on both
 * sides — a token whose header names another `alg` (or `none`) fails — and the signature is
 * compared in constant time. Claims (iss, aud, exp and the rest) are the caller's business:
 * JwtMemberTokens checks them, with its own clock, so both implementations below accept and
 * reject exactly the same tokens. The JWS layer compares no claim with the clock (`exp`, `nbf`,
 * `iat` off here); JwtMemberTokens does, with a leeway of 60 s for `iat` and `nbf` ahead of its
 * clock: an instance whose clock is a little behind the issuing one still accepts a fresh token,
 * one more than 60 s behind refuses it (and warns, naming the offset).
 *
 * Implementations: `webCryptoHs256Jws` (hono/jwt over Web Crypto, runtime-neutral) and
 * `nodeHs256Jws` (fast-jwt over node:crypto, synchronous; node-hs256-jws.ts) for the Node entry,
 * where every Web Crypto call is a libuv thread-pool job costing ~10× a synchronous HMAC.
 */
import { sign, verify } from 'hono/jwt';

export interface Hs256Jws {
  sign(claims: Record<string, unknown>): Promise<string>;
  /** the payload of a token whose header says HS256 and whose signature is right; throws otherwise */
  verify(token: string): Promise<Record<string, unknown>>;
}

/** SHARDGATE_JWT_SECRET must be long enough for HS256 to mean something */
export function assertHs256Secret(secret: string): void {
  if (secret.length < 32) throw new Error('JWT secret must be at least 32 characters');
}

export function webCryptoHs256Jws(secret: string): Hs256Jws {
  assertHs256Secret(secret);
  // imported once: a string key would be imported again on every sign and verify
  const key = crypto.subtle.importKey(
    'raw',
    new TextEncoder().encode(secret),
    { name: 'HMAC', hash: 'SHA-256' },
    false,
    ['sign', 'verify'],
  );
  return {
    async sign(claims) {
      return sign(claims, await key, 'HS256');
    },
    async verify(token) {
      return verify(token, await key, { alg: 'HS256', exp: false, nbf: false, iat: false });
    },
  };
}
