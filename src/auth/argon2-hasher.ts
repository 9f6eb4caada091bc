/**
 * argon2id password hashing with the OWASP Password Storage Cheat Sheet minimum:
 * m = 19456 KiB (19 MiB), t = 2, p = 1. Node-only adapter (native `argon2`); hashing runs on the
 * libuv thread pool, so it does not block the event loop. Hashes are PHC strings
 * (`$argon2id$v=19$m=19456,t=2,p=1$…`), so the parameters can be raised later without migration.
 */
import { argon2id, hash, verify } from 'argon2';
import type { PasswordHasher } from '../domain/password-hasher.js';

export const OWASP_ARGON2ID = { memoryCost: 19_456, timeCost: 2, parallelism: 1 } as const;

export class Argon2Hasher implements PasswordHasher {
  private dummy: Promise<string> | undefined;

  constructor(
    private readonly params: { memoryCost: number; timeCost: number; parallelism: number } = OWASP_ARGON2ID,
  ) {}

  hash(password: string): Promise<string> {
    return hash(password, { type: argon2id, ...this.params });
  }

  async verify(stored: string, password: string): Promise<boolean> {
    try {
      return await verify(stored, password);
    } catch {
      return false;
    }
  }

  async verifyDummy(password: string): Promise<void> {
    this.dummy ??= this.hash(`dummy-${crypto.randomUUID()}`);
    await this.verify(await this.dummy, password);
  }
}
