/**
 * A PasswordHasher whose every call waits for its owner's turn at a PasswordWorkGate
 * (password-work-gate.ts), so a process runs a bounded number of argon2 computations at once,
 * fairly between tenants. A call refused by the gate rejects with PasswordWorkBusyError and did
 * nothing. A call without an owner takes turns as the owner ''.
 */
import type { PasswordHasher } from '../domain/password-hasher.js';
import type { PasswordWorkGate } from './password-work-gate.js';

export class GatedPasswordHasher implements PasswordHasher {
  constructor(
    private readonly inner: PasswordHasher,
    private readonly gate: PasswordWorkGate,
  ) {}

  hash(password: string, owner = ''): Promise<string> {
    return this.gate.run(owner, () => this.inner.hash(password, owner));
  }

  verify(stored: string, password: string, owner = ''): Promise<boolean> {
    return this.gate.run(owner, () => this.inner.verify(stored, password, owner));
  }

  verifyDummy(password: string, owner = ''): Promise<void> {
    return this.gate.run(owner, () => this.inner.verifyDummy(password, owner));
  }
}
