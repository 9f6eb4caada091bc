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

/**
 * Turns for password work (Node: src/auth/password-work-gate.ts): `run` runs `work` when `owner`
 * (the tenant) has its turn, or rejects with PasswordWorkBusyError, without running it, when it
 * got none in time. A whole check is one turn (both NFKC forms of `normalizingHasher`, the dummy
 * pair), so a refusal never falls between two halves of one verdict.
 */
export interface PasswordWork {
  run<T>(owner: string, work: () => Promise<T>): Promise<T>;
}

/** a password work that did not get its turn in time; nothing of it was done */
export class PasswordWorkBusyError extends Error {
  readonly retryAfterSeconds = 1;
  constructor(readonly waitedMs: number) {
    super(`no turn for password work within ${waitedMs} ms`);
    this.name = 'PasswordWorkBusyError';
  }
}

/** `hasher` with each call made in one turn of `owner` at `work` (unchanged without `work`) */
export function inTurns(
  hasher: PasswordHasher,
  work: PasswordWork | undefined,
  owner: string,
): PasswordHasher {
  if (!work) return hasher;
  return {
    hash: (password) => work.run(owner, () => hasher.hash(password)),
    verify: (stored, password) => work.run(owner, () => hasher.verify(stored, password)),
    verifyDummy: (password) => work.run(owner, () => hasher.verifyDummy(password)),
  };
}
