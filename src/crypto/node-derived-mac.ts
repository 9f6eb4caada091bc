/**
 * `DerivedMac` on node:crypto (synchronous HKDF and HMAC, constant-time comparison): the same
 * key and MACs as `webCryptoDerivedMac`, without a thread-pool job per call. Node only.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import type { DerivedMac } from './derived-mac.js';

export function nodeDerivedMac({ secret, label }: { secret: string; label: string }): DerivedMac {
  const key = Buffer.from(hkdfSync('sha256', secret, new Uint8Array(0), label, 32));
  const mac = (data: Uint8Array) => createHmac('sha256', key).update(data).digest();
  return {
    async sign(data) {
      return new Uint8Array(mac(data));
    },
    async verify(data, given) {
      const expected = mac(data);
      return given.length === expected.length && timingSafeEqual(expected, given);
    },
  };
}
