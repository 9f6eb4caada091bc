/**
 * `Hs256Jws` on fast-jwt (node:crypto HMAC, synchronous, constant-time comparison): the same
 * tokens as `webCryptoHs256Jws`, without a thread-pool job per call. Node only.
 */
import { createSigner, createVerifier } from 'fast-jwt';
import { assertHs256Secret, type Hs256Jws } from './hs256-jws.js';

export function nodeHs256Jws(secret: string): Hs256Jws {
  assertHs256Secret(secret);
  // iat/exp come with the claims (fast-jwt keeps a given `iat`; `noTimestamp` would drop it);
  // time and claim checks are JwtMemberTokens' (see hs256-jws.ts)
  const signer = createSigner({ key: secret, algorithm: 'HS256' });
  const verifier = createVerifier({
    key: secret,
    algorithms: ['HS256'],
    ignoreExpiration: true,
    ignoreNotBefore: true,
    cache: false,
  });
  return {
    async sign(claims) {
      return signer(claims);
    },
    async verify(token) {
      return verifier(token) as Record<string, unknown>;
    },
  };
}
