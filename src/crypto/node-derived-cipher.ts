/**
 * `DerivedCipher` on node:crypto (synchronous HKDF and AES-256-GCM): the same key as
 * `webCryptoDerivedCipher`, so each opens what the other sealed, without a thread-pool job per
 * call. Node only. `open` never throws.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { type DerivedCipher, IV_BYTES, TAG_BYTES } from './derived-cipher.js';

export function nodeDerivedCipher({ secret, label }: { secret: string; label: string }): DerivedCipher {
  const key = Buffer.from(hkdfSync('sha256', secret, new Uint8Array(0), label, 32));
  return {
    async seal(plaintext, aad) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv, { authTagLength: TAG_BYTES });
      cipher.setAAD(aad);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      return new Uint8Array(Buffer.concat([iv, body, cipher.getAuthTag()]));
    },
    async open(sealed, aad) {
      if (sealed.length < IV_BYTES + TAG_BYTES) return undefined;
      try {
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES), {
          authTagLength: TAG_BYTES,
        });
        decipher.setAAD(aad);
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const head = decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES));
        // final() throws when the tag does not match; nothing decrypted is answered before it
        return new Uint8Array(Buffer.concat([head, decipher.final()]));
      } catch {
        return undefined;
      }
    },
  };
}
