/**
 * The `WWW-Authenticate` of a 401 (RFC 6750 §3): a token that was sent and is not good (malformed,
 * bad signature, expired, revoked) adds `error="invalid_token"`; a missing token or wrong
 * credentials of a login name only the scheme.
 */
export function bearerChallenge(code: string): string {
  return code === 'invalid_token' || code === 'token_revoked'
    ? 'Bearer realm="shardgate", error="invalid_token"'
    : 'Bearer realm="shardgate"';
}
