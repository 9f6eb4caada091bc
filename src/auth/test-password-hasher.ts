/**
 * A FAST, WEAK hasher for unit tests only (salted SHA-256 through Web Crypto): argon2id with
 * OWASP parameters costs tens of milliseconds per call, which would dominate the unit suite.
 * Never wire this into an entry.
 */
import type { PasswordHasher } from '../domain/password-hasher.js';

async function digest(salt: string, password: string): Promise<string> {
  const bytes = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(`${salt}:${password}`));
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

export class TestPasswordHasher implements PasswordHasher {
  async hash(password: string): Promise<string> {
    const salt = crypto.randomUUID();
    return `test$${salt}$${await digest(salt, password)}`;
  }

  async verify(stored: string, password: string): Promise<boolean> {
    const [scheme, salt, value] = stored.split('$');
    if (scheme !== 'test' || !salt || !value) return false;
    return (await digest(salt, password)) === value;
  }

  async verifyDummy(password: string): Promise<void> {
    await digest('dummy', password);
  }
}
