import { describe, expect, it } from 'vitest';
import { TestPasswordHasher } from '../auth/test-password-hasher.js';
import { normalizingHasher } from './normalizing-hasher.js';

describe('normalizingHasher', () => {
  const inner = new TestPasswordHasher();
  const hasher = normalizingHasher(inner);
  const composed = 'caf\u00e9 horse';
  const decomposed = 'cafe\u0301 horse';

  it('hashes and compares in NFKC: one password in every normal form', async () => {
    const stored = await hasher.hash(composed);
    expect(await hasher.verify(stored, decomposed)).toBe(true);
    expect(await hasher.verify(stored, composed)).toBe(true);
    expect(await hasher.verify(stored, 'caf\u00e9 hors\uff45')).toBe(true); // full-width e
    expect(await hasher.verify(stored, 'cafe horse')).toBe(false);
  });

  it('still verifies a hash made before of the password as typed, typed the same way', async () => {
    const legacy = await inner.hash(decomposed);
    expect(await hasher.verify(legacy, decomposed)).toBe(true);
    expect(await hasher.verify(legacy, 'cafe horse')).toBe(false);
  });

  it('spends as many verifies on an unknown email as on a wrong password of a known one', async () => {
    const calls = { verify: 0, dummy: 0 };
    const counting = normalizingHasher({
      hash: (p) => inner.hash(p),
      verify: async (h, p) => {
        calls.verify++;
        return inner.verify(h, p);
      },
      verifyDummy: async (p) => {
        calls.dummy++;
        await inner.verifyDummy(p);
      },
    });
    const stored = await counting.hash('something else');
    for (const wrong of ['wr0ng\uff50assword1', 'wrong password']) {
      calls.verify = calls.dummy = 0;
      await counting.verify(stored, wrong);
      await counting.verifyDummy(wrong);
      expect(calls.dummy, wrong).toBe(calls.verify);
    }
  });
});
