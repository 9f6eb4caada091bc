/**
 * A rolling change of SHARDGATE_JWT_SECRET: two apps over one data set, one with the old secret
 * alone (an instance not yet restarted), the other signing with the new one and accepting the old
 * (`SHARDGATE_JWT_SECRET_ACCEPTED`). What a client got from the first keeps working on the
 * second: its member token, its consistency token, an Idempotency-Key retry of a borrow (replayed,
 * not 422 "another request", after which an obedient client borrowed twice) and of a registration
 * (replayed, not 409 `email_taken`). An app without the accepted secret shows the failures.
 */

import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import type { Services } from '../app-env.js';
import { JwtMemberTokens } from '../auth/jwt-member-tokens.js';
import { MemoryLoginThrottle } from '../auth/memory-login-throttle.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { webCryptoDerivedMac } from '../crypto/derived-mac.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import type { DataAccess } from '../domain/data-access.js';
import { REQUEST_FINGERPRINT_LABEL } from '../domain/idempotency.js';
import { SealedConsistencyTokens } from '../routing/consistency-token.js';
import { type CallResult, callApp } from '../testing/call-app.js';
import { createMemoryServices, TEST_SECRET } from '../testing/memory-services.js';

const NEW_SECRET = 'the-new-secret-of-a-rotation-of-32-characters';

function setup() {
  const config = new MemoryConfigStore({
    initial: {
      'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
      'tenants/acme': '{"shard":"shard-1","status":"active"}',
    },
  });
  const data = new MemoryDataAccess();
  const loginThrottle = new MemoryLoginThrottle();
  const appOf = (overrides: Partial<Omit<Services, 'config'>>) =>
    createApp(createMemoryServices({ config, data, loginThrottle, ...overrides }));
  const fingerprints = (secret: string) => webCryptoDerivedMac({ secret, label: REQUEST_FINGERPRINT_LABEL });
  /** the services an instance signing with `secret` (and accepting `accepted`) has */
  const secrets = (secret: string, accepted?: string) => ({
    memberTokens: new JwtMemberTokens({ secret, acceptedSecret: accepted }),
    consistencyTokens: new SealedConsistencyTokens({ secret, acceptedSecret: accepted }),
    requestFingerprints: fingerprints(secret),
    acceptedRequestFingerprints: accepted === undefined ? undefined : fingerprints(accepted),
  });
  // TEST_SECRET alone: an instance not yet restarted
  const before = appOf({});
  // signs with the new secret, accepts the old one
  const after = appOf(secrets(NEW_SECRET, TEST_SECRET));
  // the new secret alone: what every instance was before SHARDGATE_JWT_SECRET_ACCEPTED
  const without = appOf(secrets(NEW_SECRET));
  // the first phase: signs with the old secret, accepts the new one
  const phaseOne = appOf(secrets(TEST_SECRET, NEW_SECRET));
  return { before, after, without, phaseOne, call: callApp, data, appOf, secrets };
}

/** `again` is the stored answer of `first`, replayed */
function expectReplayed(first: CallResult, again: CallResult): void {
  expect([again.status, again.text, again.res.headers.get('Idempotent-Replayed')]).toEqual([
    first.status,
    first.text,
    'true',
  ]);
}

describe('a rolling change of the JWT secret', () => {
  it("keeps a member token and a consistency token of the old secret working, and a borrow's retry replayed", async () => {
    const { before, after, without, call, data } = setup();
    const credentials = { email: 'lib@example.com', password: 'correct horse' };
    const reader = { ...credentials, name: 'N' };
    expect((await call(before, 'POST', '/v1/members', { body: reader })).status).toBe(201);
    const login = await call(before, 'POST', '/v1/auth/login', { body: credentials });
    const token = login.json.token as string;
    const book = await call(before, 'POST', '/v1/books', {
      token,
      body: { isbn: '9780306406157', title: 'Once', author: 'A', copies: 1 },
    });
    expect(book.status).toBe(201);
    // the member token of the old secret
    expect((await call(after, 'GET', '/v1/loans', { token })).status).toBe(200);
    expect((await call(without, 'GET', '/v1/loans', { token })).status).toBe(401);
    // the consistency token of the old secret (also on an unauthenticated read)
    const consistency = book.res.headers.get('X-Consistency-Token')!;
    const read = await call(after, 'GET', `/v1/books/${book.json.id}`, { consistency });
    expect(read.status).toBe(200);
    const refused = await call(without, 'GET', `/v1/books/${book.json.id}`, { consistency });
    expect([refused.status, refused.json.code]).toEqual([400, 'invalid_consistency_token']);

    // a borrow first sent to the old instance, its answer lost, retried on the new one
    const borrow = { token, key: 'borrow-1', body: { bookId: book.json.id } };
    const first = await call(before, 'POST', '/v1/loans', borrow);
    expect(first.status).toBe(201);
    const retried = await call(after, 'POST', '/v1/loans', borrow);
    expectReplayed(first, retried);
    expect(data.committed.loans.size).toBe(1);
    // the same key with another request is still told so
    const other = await call(after, 'POST', `/v1/loans/${first.json.id}/return`, { token, key: 'borrow-1' });
    expect([other.status, other.json.code]).toEqual([422, 'idempotency_key_reused']);
    expect(data.committed.loans.size).toBe(1);
  });

  it("replays a borrow's retry in the first phase too: stored under the next secret, retried where it is only accepted", async () => {
    const { after, phaseOne, call, data } = setup();
    const credentials = { email: 'lib@example.com', password: 'correct horse' };
    const reader = { ...credentials, name: 'N' };
    expect((await call(after, 'POST', '/v1/members', { body: reader })).status).toBe(201);
    const token = (await call(after, 'POST', '/v1/auth/login', { body: credentials })).json.token as string;
    const book = await call(after, 'POST', '/v1/books', {
      token,
      body: { isbn: '9780306406157', title: 'Once', author: 'A', copies: 1 },
    });
    const borrow = { token, key: 'borrow-2', body: { bookId: book.json.id } };
    const first = await call(after, 'POST', '/v1/loans', borrow);
    const retried = await call(phaseOne, 'POST', '/v1/loans', borrow);
    expect(first.status).toBe(201);
    expectReplayed(first, retried);
    expect(data.committed.loans.size).toBe(1);
  });

  it("replays a registration's retry: its key is found under the old secret's digest of the address", async () => {
    const { before, after, without, call, data } = setup();
    const alice = { email: 'alice@example.com', name: 'Alice', password: 'correct horse' };
    const first = await call(before, 'POST', '/v1/members', { key: 'signup', body: alice });
    expect(first.status).toBe(201);
    const again = await call(after, 'POST', '/v1/members', { key: 'signup', body: alice });
    expectReplayed(first, again);
    expect(data.committed.members.size).toBe(1);
    // without the accepted secret: 409 email_taken (the key was not found)
    const lost = await call(without, 'POST', '/v1/members', { key: 'signup', body: alice });
    expect([lost.status, lost.json.code]).toEqual([409, 'email_taken']);
    // a new registration on the new instance files its key under the new digest only
    const bob = { email: 'bob@example.com', name: 'Bob', password: 'battery staple' };
    expect((await call(after, 'POST', '/v1/members', { key: 'signup', body: bob })).status).toBe(201);
    const bobAgain = await call(without, 'POST', '/v1/members', { key: 'signup', body: bob });
    expect(bobAgain.res.headers.get('Idempotent-Replayed')).toBe('true');
  });

  it('answers a registration retried across secrets while its first attempt was in flight from that attempt, not 409 email_taken', async () => {
    const { before, call, data, appOf, secrets } = setup();
    // the retry's look for the key finds nothing: the first attempt's transaction had not
    // committed then; it has by the time the retry's own insert meets the address
    let inFlight = true;
    const racing: DataAccess = {
      write: (tenant, fn, options) => data.write(tenant, fn, options),
      admitWrite: (tenant) => data.admitWrite(tenant),
      read: (tenant, options, fn) => {
        if (!inFlight) return data.read(tenant, options, fn);
        inFlight = false;
        return data.read(tenant, options, (repos) =>
          fn({ ...repos, idempotency: { ...repos.idempotency, find: async () => undefined } }),
        );
      },
    };
    const after = appOf({ data: racing, ...secrets(NEW_SECRET, TEST_SECRET) });
    const alice = { email: 'alice@example.com', name: 'Alice', password: 'correct horse' };
    const first = await call(before, 'POST', '/v1/members', { key: 'signup', body: alice });
    expect(first.status).toBe(201);
    const again = await call(after, 'POST', '/v1/members', { key: 'signup', body: alice });
    // before (a review): 409 email_taken, a final "no" to the client's own sign-up
    expectReplayed(first, again);
    expect(data.committed.members.size).toBe(1);
    // the address under another key is still taken: 409
    const taken = await call(after, 'POST', '/v1/members', { key: 'other', body: alice });
    expect([taken.status, taken.json.code]).toEqual([409, 'email_taken']);
  });
});
