import { Metadata } from '@grpc/grpc-js';
import { type Etcd3, EtcdAuthenticationFailedError, GRPCUnavailableError } from 'etcd3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { installTokenRefresh, TOKEN_RECHECK_MS } from './etcd-token-refresh.js';

/** a client with etcd3's internals as installTokenRefresh reaches them; its token requests fail with `answer` */
function fakeClient(answer: () => Promise<Metadata>) {
  const calls = { tokenRequests: 0, invalidated: 0 };
  const client = {
    pool: {
      authenticator: {
        getMetadata: () => {
          calls.tokenRequests++;
          return answer();
        },
        invalidateMetadata: () => {
          calls.invalidated++;
        },
      },
    },
    watchManager: { state: 2, handleCreatedResponse: () => {}, handleError: () => {} },
  };
  const invalidate = installTokenRefresh(client as unknown as Etcd3);
  const metadata = () => client.pool.authenticator.getMetadata();
  return { calls, invalidate, metadata };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('installTokenRefresh: token requests', () => {
  it('takes "not enabled" as the answer for a while: calls go on without a token, etcd is not asked each time', async () => {
    vi.useFakeTimers();
    const { calls, invalidate, metadata } = fakeClient(() =>
      Promise.reject(new Error('3 INVALID_ARGUMENT: etcdserver: authentication is not enabled')),
    );
    for (let i = 0; i < 5; i++) expect(await metadata()).toBeInstanceOf(Metadata);
    // before: one token request per call (etcd3 leaks a gRPC client on each)
    expect(calls.tokenRequests).toBe(1);
    vi.advanceTimersByTime(TOKEN_RECHECK_MS + 1);
    await metadata();
    expect(calls.tokenRequests).toBe(2);
    // a refusal for want of a token (auth enabled meanwhile) drops the kept answer at once
    invalidate();
    await metadata();
    expect(calls.tokenRequests).toBe(3);
  });

  it('keeps a wrong password as the answer for a while: calls fail so without asking etcd', async () => {
    vi.useFakeTimers();
    const failed = new EtcdAuthenticationFailedError(
      '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
    );
    const { calls, metadata } = fakeClient(() => Promise.reject(failed));
    for (let i = 0; i < 5; i++) await expect(metadata()).rejects.toBe(failed);
    expect(calls.tokenRequests).toBe(1);
    vi.advanceTimersByTime(TOKEN_RECHECK_MS + 1);
    await expect(metadata()).rejects.toBe(failed);
    expect(calls.tokenRequests).toBe(2);
  });

  it("lets a call go on without a token when the request got no answer about it (the last endpoint's error)", async () => {
    // a review: endpoints [live, dead] with auth off failed every call with the dead one's UNAVAILABLE
    const { calls, metadata } = fakeClient(() =>
      Promise.reject(new GRPCUnavailableError('14 UNAVAILABLE: No connection established')),
    );
    expect(await metadata()).toBeInstanceOf(Metadata);
    await metadata();
    expect(calls.tokenRequests).toBe(2);
  });
});
