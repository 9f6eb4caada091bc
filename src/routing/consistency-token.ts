/**
 * `X-Consistency-Token`: which write a later read must see, readable only by the API and bound
 * to the tenant it was issued for.
 *
 * Issued: `v2.<sealed>`, base64url of `iv (12) | ciphertext | tag (16)`: AES-256-GCM of the JSON
 * `{"s":shardId,"f":flavour,"g":gtid,"t":tenantId}` under a key derived by HKDF-SHA256 from the
 * JWT secret and LABEL_V2 (src/crypto/derived-cipher.ts), a random IV per token, and the
 * additional authenticated data `v2`, so the sealed part cannot be re-labelled as another version.
 * A holder learns nothing of the shard's GTID (with v1 a tenant could count the writes of the
 * other tenants of its shard): the JSON is padded with spaces to a multiple of 128 bytes, so the
 * token's length changes only where the payload crosses one (for one tenant and shard: at one
 * magnitude of the sequence number at most, or with more GTID domains or MySQL server UUIDs),
 * not with every digit.
 * `issue: 'v1'` (SHARDGATE_CONSISTENCY_TOKENS) issues the v1 tokens below instead, for a rolling
 * upgrade from a release that knows only those.
 * The tenant id is inside the sealed payload, not in the authenticated data: a token of another
 * tenant must open, to be told apart from a forged one (a 400). It is the verdict
 * `{ ok: true, position: undefined, ignored }`, no floor for the read, like a token of another shard:
 * the reader learns nothing about that tenant, and no client that sends one breaks.
 *
 * Still accepted, never issued: `v1.<payload>.<mac>`, both base64url, payload the JSON
 * `{"s","f","g"}` in clear, mac HMAC-SHA256 over `v1.<payload>` under the key of LABEL_V1
 * (src/crypto/derived-mac.ts). Clients hold such tokens and tokens do not expire (a GTID position
 * stays meaningful); a v1 token names no tenant, so it is a floor for any tenant of its shard.
 *
 * Key rotation: tokens are signed and sealed under `secret` only; `acceptedSecret`
 * (SHARDGATE_JWT_SECRET_ACCEPTED) opens a v2 token and verifies a v1 token the current key does
 * not, so a token issued by an instance on the other side of a rolling secret change is honoured.
 * A token that no configured secret opens stays a 400, as a forged one: the two cannot be told
 * apart (no key id is in a token, and one would be the forger's to write), and ignoring every
 * token that does not open would hide a client's bug (a cut or mangled header) behind reads
 * without their floor. A client holding a token from before the secret it was made under was
 * dropped is told to drop it (`invalid_consistency_token`); the rotation procedure keeps that
 * secret accepted long enough (docs/operations.md, "Rotating credentials").
 *
 * The Node entry passes the node:crypto implementations (`nodeDerivedCipher`, `nodeDerivedMac`:
 * same keys, same tokens, no thread-pool job); the defaults are runtime-neutral Web Crypto.
 * `verify` never throws: a token that is too long, not of a format, sealed or signed with another
 * key, altered, or carrying an unparseable GTID is `{ ok: false }` — routes answer 400
 * `invalid_consistency_token`.
 */
import { type DerivedCipher, webCryptoDerivedCipher } from '../crypto/derived-cipher.js';
import { type DerivedMac, webCryptoDerivedMac } from '../crypto/derived-mac.js';
import type { ReplicationPosition } from '../domain/data-access.js';
import { base64UrlToBytes, bytesToBase64Url } from './base64url.js';
import { parseGtid } from './gtid.js';

const LABEL_V1 = 'shardgate/consistency-token/v1';
const LABEL_V2 = 'shardgate/consistency-token/v2';
const V1 = 'v1';
const V2 = 'v2';
/** the longest token a reader may send; a v2 token of the longest GTID (MAX_GTID_TEXT) fits */
export const MAX_TOKEN_LENGTH = 6000;
const SHARD_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const encoder = new TextEncoder();
const V2_AAD = encoder.encode(V2);
const PAD_TO = 128;

export type TokenVerdict =
  | { ok: true; position: ReplicationPosition }
  /** a genuine token issued for another tenant: no floor for this read, and nothing said of it */
  | { ok: true; position: undefined; ignored: 'another tenant' }
  | { ok: false; reason: string };

export interface ConsistencyTokens {
  /** a v2 token of `position`, for reads of `tenantId` */
  sign(position: ReplicationPosition, tenantId: string): Promise<string>;
  /** the floor `token` sets for a read of `tenantId` */
  verify(token: string, tenantId: string): Promise<TokenVerdict>;
}

/** the token version `sign` issues: v2, or v1 while instances of a release before v2 still run */
export type IssuedTokenVersion = 'v1' | 'v2';

export class SealedConsistencyTokens implements ConsistencyTokens {
  private readonly cipher: DerivedCipher;
  private readonly mac: DerivedMac;
  /** the keys of `acceptedSecret`, tried after the current ones */
  private readonly accepted: { cipher: DerivedCipher; mac: DerivedMac } | undefined;
  private readonly issue: IssuedTokenVersion;

  constructor({
    secret,
    acceptedSecret,
    cipher = webCryptoDerivedCipher,
    mac = webCryptoDerivedMac,
    issue = 'v2',
  }: {
    secret: string;
    /** a second secret whose tokens are verified, never issued (key rotation) */
    acceptedSecret?: string;
    /**
     * `v1` during a rolling upgrade from a release that knows only v1 (SHARDGATE_CONSISTENCY_TOKENS):
     * an instance of that release answers a v2 token 400, and HAProxy sends a client's reads to
     * either; both versions are verified either way
     */
    issue?: IssuedTokenVersion;
    /** how the v2 key is derived and used (src/crypto); the default is runtime-neutral */
    cipher?: (options: { secret: string; label: string }) => DerivedCipher;
    /** how the v1 MAC key is derived and used (src/crypto); the default is runtime-neutral */
    mac?: (options: { secret: string; label: string }) => DerivedMac;
  }) {
    this.cipher = cipher({ secret, label: LABEL_V2 });
    this.mac = mac({ secret, label: LABEL_V1 });
    this.accepted =
      acceptedSecret === undefined
        ? undefined
        : {
            cipher: cipher({ secret: acceptedSecret, label: LABEL_V2 }),
            mac: mac({ secret: acceptedSecret, label: LABEL_V1 }),
          };
    this.issue = issue;
  }

  async sign(position: ReplicationPosition, tenantId: string): Promise<string> {
    if (this.issue === 'v1') return this.signV1(position);
    const payload = JSON.stringify({
      s: position.shardId,
      f: position.flavour,
      g: position.gtid,
      t: tenantId,
    });
    const bytes = encoder.encode(payload);
    // padded with JSON whitespace to a multiple of PAD_TO bytes: the token's length does not
    // follow every digit of the GTID (see the top of this file)
    const padded = new Uint8Array(Math.ceil(bytes.length / PAD_TO) * PAD_TO).fill(0x20);
    padded.set(bytes);
    const sealed = await this.cipher.seal(padded, V2_AAD);
    return `${V2}.${bytesToBase64Url(sealed)}`;
  }

  /** the v1 token of a release before v2: readable, signed, naming no tenant */
  private async signV1(position: ReplicationPosition): Promise<string> {
    const payload = JSON.stringify({ s: position.shardId, f: position.flavour, g: position.gtid });
    const body = `${V1}.${bytesToBase64Url(encoder.encode(payload))}`;
    return `${body}.${bytesToBase64Url(await this.mac.sign(encoder.encode(body)))}`;
  }

  async verify(token: string, tenantId: string): Promise<TokenVerdict> {
    if (token.length > MAX_TOKEN_LENGTH) return { ok: false, reason: 'too long' };
    const parts = token.split('.');
    if (parts.length === 2 && parts[0] === V2) return this.verifyV2(parts[1]!, tenantId);
    if (parts.length === 3 && parts[0] === V1) return this.verifyV1(parts[1]!, parts[2]!);
    return { ok: false, reason: 'not a consistency token' };
  }

  private async verifyV2(text: string, tenantId: string): Promise<TokenVerdict> {
    const sealed = base64UrlToBytes(text);
    if (!sealed) return { ok: false, reason: 'not a consistency token' };
    // too short, another key, altered: all alike (DerivedCipher.open)
    const plain =
      (await this.cipher.open(sealed, V2_AAD)) ?? (await this.accepted?.cipher.open(sealed, V2_AAD));
    if (!plain) return { ok: false, reason: 'bad signature' };
    const payload = parsePayload(plain);
    if (!payload) return { ok: false, reason: 'bad payload' };
    const { t } = payload;
    if (typeof t !== 'string') return { ok: false, reason: 'bad tenant' };
    // before anything else of the payload: no answer depends on another tenant's position
    if (t !== tenantId) return { ok: true, position: undefined, ignored: 'another tenant' };
    return checkPosition(payload);
  }

  private async verifyV1(payloadText: string, macText: string): Promise<TokenVerdict> {
    const payloadBytes = base64UrlToBytes(payloadText);
    const mac = base64UrlToBytes(macText);
    if (!payloadBytes || !mac || mac.length !== 32) return { ok: false, reason: 'not a consistency token' };
    // constant-time comparison (DerivedMac.verify)
    const signed = encoder.encode(`${V1}.${payloadText}`);
    if (!(await this.mac.verify(signed, mac)) && !(await this.accepted?.mac.verify(signed, mac)))
      return { ok: false, reason: 'bad signature' };
    const payload = parsePayload(payloadBytes);
    if (!payload) return { ok: false, reason: 'bad payload' };
    return checkPosition(payload);
  }
}

function parsePayload(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const payload: unknown = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
    return typeof payload === 'object' && payload !== null ? (payload as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function checkPosition({ s, f, g }: Record<string, unknown>): TokenVerdict {
  if (typeof s !== 'string' || !SHARD_ID.test(s)) return { ok: false, reason: 'bad shard' };
  if (f !== 'mariadb' && f !== 'mysql') return { ok: false, reason: 'bad flavour' };
  if (typeof g !== 'string' || !parseGtid(f, g)) return { ok: false, reason: 'bad gtid' };
  return { ok: true, position: { shardId: s, flavour: f, gtid: g } };
}
