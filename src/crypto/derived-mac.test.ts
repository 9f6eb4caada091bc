import { describe, expect, it } from 'vitest';
import { webCryptoDerivedMac } from './derived-mac.js';
import { nodeDerivedMac } from './node-derived-mac.js';

const options = { secret: 'a-secret-of-at-least-thirty-two-characters', label: 'shardgate/test/v1' };
const data = new TextEncoder().encode('v1.payload');

describe('derived MAC: Web Crypto and node:crypto agree', () => {
  const web = webCryptoDerivedMac(options);
  const node = nodeDerivedMac(options);

  it('produce the same 32-byte MAC and accept each other', async () => {
    const a = await web.sign(data);
    const b = await node.sign(data);
    expect(a).toHaveLength(32);
    expect(Buffer.from(a).toString('hex')).toBe(Buffer.from(b).toString('hex'));
    expect(await web.verify(data, b)).toBe(true);
    expect(await node.verify(data, a)).toBe(true);
  });

  it('reject another label, another secret, other data and a MAC of another length', async () => {
    for (const impl of [web, node]) {
      const mac = await impl.sign(data);
      const otherLabel = nodeDerivedMac({ ...options, label: 'shardgate/other/v1' });
      const otherSecret = webCryptoDerivedMac({ ...options, secret: `${options.secret}x` });
      expect(await otherLabel.verify(data, mac)).toBe(false);
      expect(await otherSecret.verify(data, mac)).toBe(false);
      expect(await impl.verify(new TextEncoder().encode('v1.payload!'), mac)).toBe(false);
      expect(await impl.verify(data, mac.subarray(0, 31))).toBe(false);
    }
  });
});
