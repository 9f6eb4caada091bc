import { describe, expect, it } from 'vitest';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import { nodeDerivedMac } from '../crypto/node-derived-mac.js';
import { HmacConsistencyTokens } from './consistency-token.js';

const secret = 'a-secret-of-at-least-thirty-two-characters';
const position = { shardId: 'shard-1', flavour: 'mariadb' as const, gtid: '0-11-42' };

it('tokens of the Web Crypto and the node:crypto MAC are the same and accepted by both', async () => {
  const web = new HmacConsistencyTokens({ secret, mac: webCryptoDerivedMac });
  const node = new HmacConsistencyTokens({ secret, mac: nodeDerivedMac });
  const token = await web.sign(position);
  expect(await node.sign(position)).toBe(token);
  expect(await node.verify(token)).toEqual({ ok: true, position });
  expect(await web.verify(await node.sign(position))).toEqual({ ok: true, position });
});

describe.each([
  ['Web Crypto', webCryptoDerivedMac],
  ['node:crypto', nodeDerivedMac],
])('consistency tokens (%s)', (_name, mac) => {
  const tokens = new HmacConsistencyTokens({ secret, mac });

  it('round-trips a position', async () => {
    const token = await tokens.sign(position);
    expect(token).toMatch(/^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(await tokens.verify(token)).toEqual({ ok: true, position });
  });

  it('rejects tokens signed with another key (including the raw JWT secret)', async () => {
    const other = await new HmacConsistencyTokens({ secret: `${secret}x`, mac }).sign(position);
    expect((await tokens.verify(other)).ok).toBe(false);
  });

  it('rejects a tampered payload or signature', async () => {
    const token = await tokens.sign(position);
    const [v, payload, mac] = token.split('.') as [string, string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ s: 'shard-1', f: 'mariadb', g: '0-11-1' })).toString(
      'base64url',
    );
    expect((await tokens.verify(`${v}.${forgedPayload}.${mac}`)).ok).toBe(false);
    // a character in the middle: every bit of it is in the MAC
    const flipped = `${mac.slice(0, 10)}${mac[10] === 'A' ? 'B' : 'A'}${mac.slice(11)}`;
    expect(flipped).not.toBe(mac);
    expect((await tokens.verify(`${v}.${payload}.${flipped}`)).ok).toBe(false);
    // the last character carries 2 bits that are not in the MAC (43 characters for 32 bytes):
    // another spelling of the same MAC is refused too, so a token has one spelling
    const last = 'AEIMQUYcgkosw048'.indexOf(mac.at(-1)!);
    expect(last).toBeGreaterThanOrEqual(0);
    const respelled = `${mac.slice(0, -1)}${'BFJNRVZdhlptx159'[last]}`;
    expect((await tokens.verify(`${v}.${payload}.${respelled}`)).ok).toBe(false);
  });

  it('rejects malformed input without throwing', async () => {
    for (const bad of ['', 'v1', 'v1..', 'v2.a.b', 'v1.!!.??', 'x'.repeat(7000), 'v1.eyJ9.AAAA', 'a.b.c.d']) {
      expect((await tokens.verify(bad)).ok).toBe(false);
    }
  });

  it('rejects a correctly signed payload with a bad GTID or shard', async () => {
    const badGtid = await tokens.sign({ ...position, gtid: "0-1-1'; --" });
    expect(await tokens.verify(badGtid)).toMatchObject({ ok: false, reason: 'bad gtid' });
    const badShard = await tokens.sign({ ...position, shardId: 'Shard_1' });
    expect(await tokens.verify(badShard)).toMatchObject({ ok: false, reason: 'bad shard' });
  });
});
