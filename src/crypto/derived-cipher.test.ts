import { createCipheriv, hkdfSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { IV_BYTES, TAG_BYTES, webCryptoDerivedCipher } from './derived-cipher.js';
import { nodeDerivedCipher } from './node-derived-cipher.js';

const options = { secret: 'a-secret-of-at-least-thirty-two-characters', label: 'shardgate/test/v2' };
const encoder = new TextEncoder();
const plaintext = encoder.encode('{"s":"shard-1","g":"0-11-42"}');
const aad = encoder.encode('v2');
const hex = (bytes: Uint8Array | undefined) => (bytes ? Buffer.from(bytes).toString('hex') : bytes);

describe('derived cipher: Web Crypto and node:crypto agree', () => {
  const web = webCryptoDerivedCipher(options);
  const node = nodeDerivedCipher(options);

  it('each opens what the other sealed: iv | ciphertext | tag', async () => {
    for (const [seal, open] of [
      [web, node],
      [node, web],
      [web, web],
      [node, node],
    ] as const) {
      const sealed = await seal.seal(plaintext, aad);
      expect(sealed).toHaveLength(IV_BYTES + plaintext.length + TAG_BYTES);
      expect(hex(await open.open(sealed, aad))).toBe(hex(plaintext));
    }
  });

  it('uses the HKDF-SHA256 key of the label (as derived-mac.ts) and a fresh IV per seal', async () => {
    const key = Buffer.from(hkdfSync('sha256', options.secret, new Uint8Array(0), options.label, 32));
    const iv = Buffer.alloc(IV_BYTES, 7);
    const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(aad);
    const made = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    expect(hex(await web.open(made, aad))).toBe(hex(plaintext));
    expect(hex(await node.open(made, aad))).toBe(hex(plaintext));
    for (const impl of [web, node]) {
      const a = await impl.seal(plaintext, aad);
      const b = await impl.seal(plaintext, aad);
      expect(hex(a.subarray(0, IV_BYTES))).not.toBe(hex(b.subarray(0, IV_BYTES)));
      expect(hex(a)).not.toBe(hex(b));
    }
  });

  it('seals an empty plaintext', async () => {
    const sealed = await node.seal(new Uint8Array(0), aad);
    expect(sealed).toHaveLength(IV_BYTES + TAG_BYTES);
    expect(await web.open(sealed, aad)).toEqual(new Uint8Array(0));
  });

  it('opens nothing under another label, another secret, other aad, altered or cut bytes, without throwing', async () => {
    const others = [
      webCryptoDerivedCipher({ ...options, label: 'shardgate/other/v2' }),
      nodeDerivedCipher({ ...options, label: 'shardgate/other/v2' }),
      webCryptoDerivedCipher({ ...options, secret: `${options.secret}x` }),
      nodeDerivedCipher({ ...options, secret: `${options.secret}x` }),
    ];
    for (const impl of [web, node]) {
      const sealed = await impl.seal(plaintext, aad);
      for (const other of others) expect(await other.open(sealed, aad)).toBeUndefined();
      for (const opener of [web, node]) {
        expect(await opener.open(sealed, encoder.encode('v1'))).toBeUndefined();
        expect(await opener.open(sealed, new Uint8Array(0))).toBeUndefined();
        // every byte: iv, ciphertext and tag
        for (let i = 0; i < sealed.length; i++) {
          const altered = sealed.slice();
          altered[i]! ^= 0x01;
          expect(await opener.open(altered, aad)).toBeUndefined();
        }
        for (const length of [
          0,
          1,
          IV_BYTES,
          IV_BYTES + TAG_BYTES - 1,
          IV_BYTES + TAG_BYTES,
          sealed.length - 1,
        ]) {
          expect(await opener.open(sealed.subarray(0, length), aad)).toBeUndefined();
        }
        expect(await opener.open(new Uint8Array([...sealed, 0]), aad)).toBeUndefined();
      }
    }
  });
});
