/**
 * Password hashing port. The production adapter is argon2id with the OWASP Password Storage
 * parameters (src/auth/argon2-hasher.ts); unit tests use a fast one (src/auth/test-password-hasher.ts).
 * `verify` never throws for a malformed stored hash: it answers false.
 * `owner` is the tenant the work is done for: an adapter may take turns by it (Node: the
 * password work gate, src/auth/password-work-gate.ts, whose refusal is a PasswordWorkBusyError).
 */
export interface PasswordHasher {
  hash(password: string, owner?: string): Promise<string>;
  verify(hash: string, password: string, owner?: string): Promise<boolean>;
  /**
   * Burns about the time of one `verify`, for an unknown email at login, so the answer time does
   * not tell whether an account exists.
   */
  verifyDummy(password: string, owner?: string): Promise<void>;
}

/** a password work that did not get its turn in time; nothing of it was done */
export class PasswordWorkBusyError extends Error {
  readonly retryAfterSeconds = 1;
  constructor(readonly waitedMs: number) {
    super(`no turn for password work within ${waitedMs} ms`);
    this.name = 'PasswordWorkBusyError';
  }
}
