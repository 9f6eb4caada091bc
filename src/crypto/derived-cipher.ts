/**
 * An authenticated-encryption key derived from a secret: AES-256-GCM under the key
 * HKDF-SHA256(secret, salt = empty, info = label, 32 bytes), as derived-mac.ts derives its MAC key
 * (one secret, one key per label, so tokens of different kinds can never be swapped).
 *
 * `seal` answers `iv (12 bytes) | ciphertext | tag (16 bytes)` with a fresh random IV per call;
 * `aad` is authenticated, not encrypted: `open` must be given the same. Random 96-bit IVs keep
 * the chance of an IV used twice under 2^-32 for up to 2^32 seals per key (NIST SP 800-38D
 * §8.3); an IV used twice would reveal the XOR of those two plaintexts and let the holder of both
 * forge under this key. Plaintexts here are short tokens; a deployment sealing near 2^32 of them
 * under one secret should change the secret (or the label).
 *
 * Two implementations seal and open each other's output: `webCryptoDerivedCipher` here
 * (runtime-neutral: Web Crypto), and `nodeDerivedCipher` in node-derived-cipher.ts (node:crypto,
 * synchronous), which the Node entry uses: Node runs every Web Crypto call as a job on the libuv
 * thread pool (see derived-mac.ts).
 *
 * `open` never throws: anything that is too short, sealed under another key or label, with other
 * `aad`, or altered in any byte answers undefined.
 */
import { webCryptoDerivedKey } from './derived-mac.js';
export interface DerivedCipher {
  seal(plaintext: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  open(sealed: Uint8Array, aad: Uint8Array): Promise<Uint8Array | undefined>;
}

export const IV_BYTES = 12;
export const TAG_BYTES = 16;

export function webCryptoDerivedCipher(options: { secret: string; label: string }): DerivedCipher {
  const key = webCryptoDerivedKey(options, { name: 'AES-GCM', length: 256 }, ['encrypt', 'decrypt']);
  return {
    async seal(plaintext, aad) {
      const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
      // Web Crypto answers ciphertext | tag
      const body = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: 'AES-GCM', iv, additionalData: aad, tagLength: TAG_BYTES * 8 },
          await key,
          plaintext,
        ),
      );
      const sealed = new Uint8Array(IV_BYTES + body.length);
      sealed.set(iv);
      sealed.set(body, IV_BYTES);
      return sealed;
    },
    async open(sealed, aad) {
      if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
      try {
        return new Uint8Array(
          await crypto.subtle.decrypt(
            {
              name: 'AES-GCM',
              iv: sealed.subarray(0, IV_BYTES),
              additionalData: aad,
              tagLength: TAG_BYTES * 8,
            },
            await key,
            sealed.subarray(IV_BYTES),
          ),
        );
      } catch {
        // OperationError: the tag does not match (another key, other aad, altered bytes)
        return undefined;
      }
    },
  };
}
