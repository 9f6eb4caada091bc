import { describe, expect, it } from 'vitest';
import { webCryptoDerivedCipher } from '../crypto/derived-cipher.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import { nodeDerivedCipher } from '../crypto/node-derived-cipher.js';
import { nodeDerivedMac } from '../crypto/node-derived-mac.js';
import type { ReplicationPosition } from '../domain/data-access.js';
import { MAX_TOKEN_LENGTH, SealedConsistencyTokens } from './consistency-token.js';
import { MAX_GTID_TEXT } from './gtid.js';

const secret = 'a-secret-of-at-least-thirty-two-characters';
const tenant = 'acme-library';
const position = { shardId: 'shard-1', flavour: 'mariadb' as const, gtid: '0-11-42' };
const encoder = new TextEncoder();

/** v1 tokens as they were issued before v2 (made by HmacConsistencyTokens, secret above) */
const ISSUED_V1 = [
  [
    'v1.eyJzIjoic2hhcmQtMSIsImYiOiJtYXJpYWRiIiwiZyI6IjAtMTEtNDIifQ.1IOc3ySio90DphtZEuC5nPr4tEPR8bYGqBxgpu7nGTc',
    position,
  ],
  [
    'v1.eyJzIjoic2hhcmQtMiIsImYiOiJteXNxbCIsImciOiIzRTExRkE0Ny03MUNBLTExRTEtOUUzMy1DODBBQTk0Mjk1NjI6MS01In0.wPKivfuQHuf7QKQqZX83rTWrZi1q_xiAyIUdBogZAaw',
    { shardId: 'shard-2', flavour: 'mysql', gtid: '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5' },
  ],
] as const;

/** a v1 token made the old way: HMAC-SHA256 over `v1.<payload>` under the v1 label's key */
async function signV1(payload: unknown, key = secret): Promise<string> {
  const body = `v1.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
  const mac = await nodeDerivedMac({ secret: key, label: 'shardgate/consistency-token/v1' }).sign(
    encoder.encode(body),
  );
  return `${body}.${Buffer.from(mac).toString('base64url')}`;
}

/** a v2 token of any payload and additional data, under the v2 label's key */
async function sealV2(payload: unknown, aad = 'v2'): Promise<string> {
  const cipher = nodeDerivedCipher({ secret, label: 'shardgate/consistency-token/v2' });
  const sealed = await cipher.seal(encoder.encode(JSON.stringify(payload)), encoder.encode(aad));
  return `v2.${Buffer.from(sealed).toString('base64url')}`;
}

const implementations = [
  ['Web Crypto', { cipher: webCryptoDerivedCipher, mac: webCryptoDerivedMac }],
  ['node:crypto', { cipher: nodeDerivedCipher, mac: nodeDerivedMac }],
] as const;

it('tokens of the Web Crypto and the node:crypto implementations are accepted by both', async () => {
  const web = new SealedConsistencyTokens({
    secret,
    cipher: webCryptoDerivedCipher,
    mac: webCryptoDerivedMac,
  });
  const node = new SealedConsistencyTokens({ secret, cipher: nodeDerivedCipher, mac: nodeDerivedMac });
  expect(await node.verify(await web.sign(position, tenant), tenant)).toEqual({ ok: true, position });
  expect(await web.verify(await node.sign(position, tenant), tenant)).toEqual({ ok: true, position });
});

describe.each(implementations)('consistency tokens (%s)', (_name, crypto) => {
  const tokens = new SealedConsistencyTokens({ secret, ...crypto });

  it('round-trips a position as a v2 token, a new one each time (random IV)', async () => {
    const token = await tokens.sign(position, tenant);
    expect(token).toMatch(/^v2\.[A-Za-z0-9_-]+$/);
    expect(await tokens.verify(token, tenant)).toEqual({ ok: true, position });
    const again = await tokens.sign(position, tenant);
    expect(again).not.toBe(token);
    expect(await tokens.verify(again, tenant)).toEqual({ ok: true, position });
  });

  it('holds neither the GTID, the shard id nor the tenant id in any decodable form', async () => {
    const positions: ReplicationPosition[] = [
      position,
      { shardId: 'eu-west-shard-7', flavour: 'mysql', gtid: '3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5' },
    ];
    for (const p of positions) {
      const token = await tokens.sign(p, tenant);
      for (const part of token.split('.')) {
        const bytes = Buffer.from(part, 'base64url');
        for (const text of [bytes.toString('latin1'), bytes.toString('utf8'), part]) {
          for (const secretText of [p.gtid, p.shardId, tenant, '"g"', '"t"', 'mariadb', 'mysql']) {
            expect(text).not.toContain(secretText);
          }
        }
      }
    }
  });

  it('has a length that does not follow the GTID (padded to 128 bytes)', async () => {
    const lengths = new Set<number>();
    for (const gtid of ['0-1-1', '0-11-42', '0-11-31686', '0-4294967295-18446744073709551615']) {
      const token = await tokens.sign({ ...position, gtid }, tenant);
      lengths.add(token.length);
      expect(await tokens.verify(token, tenant)).toEqual({ ok: true, position: { ...position, gtid } });
    }
    expect([...lengths]).toEqual([3 + Math.ceil(((128 + 28) * 4) / 3)]);
  });

  it('is no floor for another tenant: a distinct verdict, whatever its position', async () => {
    const token = await tokens.sign(position, tenant);
    expect(await tokens.verify(token, 'other-tenant')).toEqual({
      ok: true,
      position: undefined,
      ignored: 'another tenant',
    });
    // the tenant is compared before the position: nothing of another tenant's payload shows
    const badGtidOfOther = await sealV2({ s: 'shard-1', f: 'mariadb', g: 'nope', t: 'other-tenant' });
    expect(await tokens.verify(badGtidOfOther, tenant)).toMatchObject({ ok: true, position: undefined });
  });

  it('rejects tokens sealed with another key (including the raw JWT secret)', async () => {
    const other = await new SealedConsistencyTokens({ secret: `${secret}x`, ...crypto }).sign(
      position,
      tenant,
    );
    expect(await tokens.verify(other, tenant)).toEqual({ ok: false, reason: 'bad signature' });
    // the v1 label's key is not the v2 label's
    const v1Key = nodeDerivedCipher({ secret, label: 'shardgate/consistency-token/v1' });
    const sealed = await v1Key.seal(
      encoder.encode(JSON.stringify({ ...position, t: tenant })),
      encoder.encode('v2'),
    );
    expect((await tokens.verify(`v2.${Buffer.from(sealed).toString('base64url')}`, tenant)).ok).toBe(false);
  });

  it('rejects every altered byte, a truncated token and a re-labelled one', async () => {
    const token = await tokens.sign(position, tenant);
    const sealed = Buffer.from(token.slice(3), 'base64url');
    for (let i = 0; i < sealed.length; i++) {
      const altered = Buffer.from(sealed);
      altered[i]! ^= 0x80;
      expect(await tokens.verify(`v2.${altered.toString('base64url')}`, tenant)).toEqual({
        ok: false,
        reason: 'bad signature',
      });
    }
    for (const length of [0, 1, 12, 27, 28, sealed.length - 1]) {
      expect((await tokens.verify(`v2.${sealed.subarray(0, length).toString('base64url')}`, tenant)).ok).toBe(
        false,
      );
    }
    expect((await tokens.verify(token.slice(0, -1), tenant)).ok).toBe(false);
    expect((await tokens.verify(`${token}A`, tenant)).ok).toBe(false);
    // re-labelled as another version, or sealed with other additional data
    expect((await tokens.verify(`v1.${token.slice(3)}`, tenant)).ok).toBe(false);
    expect((await tokens.verify(`v3.${token.slice(3)}`, tenant)).ok).toBe(false);
    expect((await tokens.verify(`${token}.AAAA`, tenant)).ok).toBe(false);
    const otherAad = await sealV2({ ...{ s: 'shard-1', f: 'mariadb', g: '0-11-42' }, t: tenant }, 'v1');
    expect(await tokens.verify(otherAad, tenant)).toEqual({ ok: false, reason: 'bad signature' });
    const withTenantAad = await sealV2(
      { s: 'shard-1', f: 'mariadb', g: '0-11-42', t: tenant },
      `v2.${tenant}`,
    );
    expect((await tokens.verify(withTenantAad, tenant)).ok).toBe(false);
    // the v2 sealed part is correct, proved by the same payload sealed with `v2`
    expect(
      await tokens.verify(await sealV2({ s: 'shard-1', f: 'mariadb', g: '0-11-42', t: tenant }), tenant),
    ).toEqual({ ok: true, position });
  });

  it('rejects malformed input without throwing', async () => {
    for (const bad of [
      '',
      'v1',
      'v2',
      'v2.',
      'v1..',
      'v2..',
      'v2.a.b',
      'v1.!!.??',
      'v2.!!',
      'x'.repeat(7000),
      `v2.${'A'.repeat(MAX_TOKEN_LENGTH)}`,
      'v1.eyJ9.AAAA',
      'a.b.c.d',
    ]) {
      expect((await tokens.verify(bad, tenant)).ok).toBe(false);
    }
  });

  it('rejects a correctly sealed payload with a bad GTID, shard, flavour or tenant', async () => {
    const base = { s: 'shard-1', f: 'mariadb', g: '0-11-42', t: tenant };
    const cases = [
      [{ ...base, g: "0-1-1'; --" }, 'bad gtid'],
      [{ ...base, s: 'Shard_1' }, 'bad shard'],
      [{ ...base, f: 'postgres' }, 'bad flavour'],
      [{ s: 'shard-1', f: 'mariadb', g: '0-11-42' }, 'bad tenant'],
      [{ ...base, t: 7 }, 'bad tenant'],
      [null, 'bad payload'],
      ['v2', 'bad payload'],
    ] as const;
    for (const [payload, reason] of cases) {
      expect(await tokens.verify(await sealV2(payload), tenant)).toEqual({ ok: false, reason });
    }
    // and one that is not JSON at all
    const cipher = nodeDerivedCipher({ secret, label: 'shardgate/consistency-token/v2' });
    const notJson = await cipher.seal(new Uint8Array([0xff, 0x7b]), encoder.encode('v2'));
    expect(await tokens.verify(`v2.${Buffer.from(notJson).toString('base64url')}`, tenant)).toEqual({
      ok: false,
      reason: 'bad payload',
    });
  });

  it('seals the longest position within MAX_TOKEN_LENGTH', async () => {
    const sets: string[] = [];
    for (let i = 0; ; i++) {
      const next = `${i.toString(16).padStart(8, '0')}-71CA-11E1-9E33-C80AA9429562:1-9223372036854775807`;
      if ([...sets, next].join(',').length > MAX_GTID_TEXT) break;
      sets.push(next);
    }
    const longest = {
      shardId: `s${'-'.repeat(62)}`,
      flavour: 'mysql' as const,
      gtid: sets.join(','),
    };
    const longTenant = `t${'x'.repeat(62)}`;
    const token = await tokens.sign(longest, longTenant);
    expect(token.length).toBeLessThanOrEqual(MAX_TOKEN_LENGTH);
    expect(await tokens.verify(token, longTenant)).toEqual({ ok: true, position: longest });
  });

  it('issues v1 tokens when told to (a rolling upgrade from a release that knows only v1), and verifies both', async () => {
    const upgrading = new SealedConsistencyTokens({ secret, ...crypto, issue: 'v1' });
    const token = await upgrading.sign(position, tenant);
    expect(token).toMatch(/^v1\.[^.]+\.[^.]+$/);
    // what a release before v2 checks: the readable payload and the HMAC of the v1 key
    const [, payload] = token.split('.');
    expect(JSON.parse(Buffer.from(payload!, 'base64url').toString('utf8'))).toEqual({
      s: position.shardId,
      f: position.flavour,
      g: position.gtid,
    });
    expect(token).toBe(await signV1({ s: position.shardId, f: position.flavour, g: position.gtid }));
    expect(await upgrading.verify(token, tenant)).toEqual({ ok: true, position });
    expect(await upgrading.verify(await tokens.sign(position, tenant), tenant)).toEqual({
      ok: true,
      position,
    });
  });

  describe('v1 tokens, issued before v2, still verify with their checks', () => {
    it('for any tenant (a v1 token names none)', async () => {
      for (const [token, p] of ISSUED_V1) {
        expect(await tokens.verify(token, tenant)).toEqual({ ok: true, position: p });
        expect(await tokens.verify(token, 'another-tenant')).toEqual({ ok: true, position: p });
      }
      expect(await tokens.verify(await signV1({ s: 'shard-1', f: 'mariadb', g: '0-11-43' }), tenant)).toEqual(
        {
          ok: true,
          position: { ...position, gtid: '0-11-43' },
        },
      );
    });

    it('rejects v1 tokens signed with another key, a tampered payload or MAC', async () => {
      const [token] = ISSUED_V1[0];
      expect(
        (
          await tokens.verify(
            await signV1({ s: 'shard-1', f: 'mariadb', g: '0-11-42' }, `${secret}x`),
            tenant,
          )
        ).ok,
      ).toBe(false);
      const [v, payload, mac] = token.split('.') as [string, string, string];
      const forgedPayload = Buffer.from(JSON.stringify({ s: 'shard-1', f: 'mariadb', g: '0-11-1' })).toString(
        'base64url',
      );
      expect((await tokens.verify(`${v}.${forgedPayload}.${mac}`, tenant)).ok).toBe(false);
      const flipped = `${mac.slice(0, 10)}${mac[10] === 'A' ? 'B' : 'A'}${mac.slice(11)}`;
      expect((await tokens.verify(`${v}.${payload}.${flipped}`, tenant)).ok).toBe(false);
      // the last character carries 2 bits that are not in the MAC: one spelling per token
      const last = 'AEIMQUYcgkosw048'.indexOf(mac.at(-1)!);
      expect(last).toBeGreaterThanOrEqual(0);
      const respelled = `${mac.slice(0, -1)}${'BFJNRVZdhlptx159'[last]}`;
      expect((await tokens.verify(`${v}.${payload}.${respelled}`, tenant)).ok).toBe(false);
      // a v1 MAC over the same payload does not make a v2 token
      expect((await tokens.verify(`v2.${payload}.${mac}`, tenant)).ok).toBe(false);
    });

    it('rejects a correctly signed v1 payload with a bad GTID or shard', async () => {
      const badGtid = await signV1({ s: 'shard-1', f: 'mariadb', g: "0-1-1'; --" });
      expect(await tokens.verify(badGtid, tenant)).toMatchObject({ ok: false, reason: 'bad gtid' });
      const badShard = await signV1({ s: 'Shard_1', f: 'mariadb', g: '0-11-42' });
      expect(await tokens.verify(badShard, tenant)).toMatchObject({ ok: false, reason: 'bad shard' });
    });
  });
});

describe.each(implementations)('consistency tokens across a secret rotation (%s)', (_name, crypto) => {
  const other = 'the-other-secret-of-a-rotation-of-32-characters';
  const before = new SealedConsistencyTokens({ secret: other, ...crypto });
  const after = new SealedConsistencyTokens({ secret, acceptedSecret: other, ...crypto });

  it('opens a v2 token sealed under the accepted secret, with its tenant check', async () => {
    const token = await before.sign(position, tenant);
    expect(await after.verify(token, tenant)).toEqual({ ok: true, position });
    expect(await after.verify(token, 'other-tenant')).toMatchObject({ ok: true, position: undefined });
    // and the other way round: phase one accepts the next secret's tokens
    const phaseOne = new SealedConsistencyTokens({ secret: other, acceptedSecret: secret, ...crypto });
    expect(await phaseOne.verify(await after.sign(position, tenant), tenant)).toEqual({ ok: true, position });
  });

  it('verifies a v1 token signed under the accepted secret', async () => {
    const token = await signV1({ s: 'shard-1', f: 'mariadb', g: '0-11-42' }, other);
    expect(await after.verify(token, tenant)).toEqual({ ok: true, position });
    expect(
      await after.verify(
        await new SealedConsistencyTokens({ secret: other, ...crypto, issue: 'v1' }).sign(position, tenant),
        tenant,
      ),
    ).toEqual({ ok: true, position });
  });

  it('issues under the current secret only, and refuses a token no configured secret made', async () => {
    const issued = await after.sign(position, tenant);
    expect(await before.verify(issued, tenant)).toEqual({ ok: false, reason: 'bad signature' });
    expect(await new SealedConsistencyTokens({ secret, ...crypto }).verify(issued, tenant)).toEqual({
      ok: true,
      position,
    });
    const third = new SealedConsistencyTokens({ secret: `${other}x`, ...crypto });
    expect(await after.verify(await third.sign(position, tenant), tenant)).toEqual({
      ok: false,
      reason: 'bad signature',
    });
    expect(
      await after.verify(await signV1({ s: 'shard-1', f: 'mariadb', g: '0-11-42' }, `${other}x`), tenant),
    ).toEqual({ ok: false, reason: 'bad signature' });
  });
});
