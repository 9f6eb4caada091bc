/**
 * `X-Consistency-Token`: which write a later read must see. Format `v1.<payload>.<mac>`, both
 * base64url; payload is JSON `{"s":shardId,"f":flavour,"g":gtid}`; mac is HMAC-SHA256 over
 * `v1.<payload>` with a key derived by HKDF-SHA256 from the JWT secret and the label below, so a
 * member token and a consistency token can never be swapped for one another.
 *
 * The MAC comes from src/crypto (`webCryptoDerivedMac` by default, runtime-neutral; the Node
 * entry passes `nodeDerivedMac`: same key, same tokens, no thread-pool job). `verify` never
 * throws: a token that is too long, not of the format, signed with another key, or carrying an
 * unparseable GTID is `{ ok: false }` — routes answer 400 `invalid_consistency_token`. Tokens do not expire: a GTID position stays meaningful.
 */
import { type DerivedMac, webCryptoDerivedMac } from '../crypto/derived-mac.js';
import type { ReplicationPosition } from '../domain/data-access.js';
import { base64UrlToBytes, bytesToBase64Url } from './base64url.js';
import { parseGtid } from './gtid.js';

const LABEL = 'shardgate/consistency-token/v1';
const PREFIX = 'v1';
export const MAX_TOKEN_LENGTH = 6000;
const SHARD_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export type TokenVerdict = { ok: true; position: ReplicationPosition } | { ok: false; reason: string };

export interface ConsistencyTokens {
  sign(position: ReplicationPosition): Promise<string>;
  verify(token: string): Promise<TokenVerdict>;
}

export class HmacConsistencyTokens implements ConsistencyTokens {
  private readonly mac: DerivedMac;

  constructor({
    secret,
    mac = webCryptoDerivedMac,
  }: {
    secret: string;
    /** how the MAC key is derived and used (src/crypto); the default is runtime-neutral */
    mac?: (options: { secret: string; label: string }) => DerivedMac;
  }) {
    this.mac = mac({ secret, label: LABEL });
  }

  async sign(position: ReplicationPosition): Promise<string> {
    const payload = JSON.stringify({ s: position.shardId, f: position.flavour, g: position.gtid });
    const body = `${PREFIX}.${bytesToBase64Url(new TextEncoder().encode(payload))}`;
    const mac = await this.mac.sign(new TextEncoder().encode(body));
    return `${body}.${bytesToBase64Url(mac)}`;
  }

  async verify(token: string): Promise<TokenVerdict> {
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'too long' };
    const parts = token.split('.');
    if (parts.length !== 3 || parts[0] !== PREFIX) return { ok: false, reason: 'not a consistency token' };
    const payloadBytes = base64UrlToBytes(parts[1]!);
    const mac = base64UrlToBytes(parts[2]!);
    if (!payloadBytes || !mac || mac.length !== 32) return { ok: false, reason: 'not a consistency token' };
    const body = new TextEncoder().encode(`${parts[0]}.${parts[1]}`);
    // constant-time comparison (DerivedMac.verify)
    if (!(await this.mac.verify(body, mac))) return { ok: false, reason: 'bad signature' };
    let payload: unknown;
    try {
      payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payloadBytes));
    } catch {
      return { ok: false, reason: 'bad payload' };
    }
    const { s, f, g } = (payload ?? {}) as Record<string, unknown>;
    if (typeof s !== 'string' || !SHARD_ID.test(s)) return { ok: false, reason: 'bad shard' };
    if (f !== 'mariadb' && f !== 'mysql') return { ok: false, reason: 'bad flavour' };
    if (typeof g !== 'string' || !parseGtid(f, g)) return { ok: false, reason: 'bad gtid' };
    return { ok: true, position: { shardId: s, flavour: f, gtid: g } };
  }
}
