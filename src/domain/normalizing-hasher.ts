/**
 * Passwords hashed and compared in Unicode NFKC (NIST SP 800-63B §5.1.1.2: normalise before
 * hashing): `café` typed as é (U+00E9) or as e + U+0301, or with a full-width letter, is one
 * password. Before, they were hashed as typed, so a member who registered on one keyboard could
 * be refused on another (an outside check: NFD at login after NFC at registration, 401).
 *
 * A hash made before (of the password as typed) still verifies: when the normalised password does
 * not, and the password as typed differs from it, that is tried too. Such a member's hash is
 * normalised at their next password change. The extra `verify` is spent only on passwords that
 * NFKC changes, which ASCII ones never are, and `verifyDummy` (an unknown email) spends it too.
 */
import type { PasswordHasher } from './password-hasher.js';

export function normalizingHasher(inner: PasswordHasher): PasswordHasher {
  return {
    hash: (password) => inner.hash(password.normalize('NFKC')),
    async verify(stored, password) {
      const normal = password.normalize('NFKC');
      if (await inner.verify(stored, normal)) return true;
      return normal !== password && inner.verify(stored, password);
    },
    // as many verifies as `verify` of a wrong password: an unknown email must take as long (with
    // one here, a wrong password NFKC changes took twice as long for a known email: 85 vs 42 ms)
    async verifyDummy(password) {
      const normal = password.normalize('NFKC');
      await inner.verifyDummy(normal);
      if (normal !== password) await inner.verifyDummy(password);
    },
  };
}
