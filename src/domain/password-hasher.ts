/**
 * Password hashing port. The production adapter is argon2id with the OWASP Password Storage
 * parameters (src/auth/argon2-hasher.ts); unit tests use a fast one (src/auth/test-password-hasher.ts).
 * `verify` never throws for a malformed stored hash: it answers false.
 */
export interface PasswordHasher {
  hash(password: string): Promise<string>;
  verify(hash: string, password: string): Promise<boolean>;
  /**
   * Burns about the time of one `verify`, for an unknown email at login, so the answer time does
   * not tell whether an account exists.
   */
  verifyDummy(password: string): Promise<void>;
}
