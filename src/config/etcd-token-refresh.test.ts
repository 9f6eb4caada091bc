import { Metadata } from '@grpc/grpc-js';
import { type Etcd3, EtcdAuthenticationFailedError, GRPCUnavailableError } from 'etcd3';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { installTokenRefresh, TOKEN_RECHECK_MS } from './etcd-token-refresh.js';

/**
 * a client with etcd3's internals as installTokenRefresh reaches them: its token request asks each
 * host in turn (`hosts`: each one's answer) and, when none gives a token, rejects with the last
 * host's error, as etcd3 1.1.2 does
 */
function fakeClient(...hosts: (() => Promise<string>)[]) {
  const calls = { tokenRequests: 0, hostRequests: 0 };
  const authenticator = {
    getCredentialsFromHost(index: unknown): Promise<string> {
      calls.hostRequests++;
      return hosts[index as number]!();
    },
    async getMetadata(): Promise<Metadata> {
      calls.tokenRequests++;
      let last: unknown;
      for (let i = 0; i < hosts.length; i++) {
        try {
          const meta = new Metadata();
          meta.set('token', await this.getCredentialsFromHost(i));
          return meta;
        } catch (error) {
          last = error;
        }
      }
      throw last;
    },
    invalidateMetadata: () => {},
  };
  const client = {
    pool: { authenticator },
    watchManager: { state: 2, handleCreatedResponse: () => {}, handleError: () => {} },
  };
  const invalidate = installTokenRefresh(client as unknown as Etcd3);
  const metadata = () => authenticator.getMetadata();
  return { calls, invalidate, metadata };
}

const notEnabled = () =>
  Promise.reject(new Error('3 INVALID_ARGUMENT: etcdserver: authentication is not enabled'));
const down = () => Promise.reject(new GRPCUnavailableError('14 UNAVAILABLE: No connection established'));

afterEach(() => {
  vi.useRealTimers();
});

describe('installTokenRefresh: token requests', () => {
  it('takes "not enabled" as the answer for a while: calls go on without a token, etcd is not asked each time', async () => {
    vi.useFakeTimers();
    const { calls, invalidate, metadata } = fakeClient(notEnabled);
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

  it("takes a host's answer though the last host was down (etcd3 reports the last one's error)", async () => {
    // a review: endpoints [live, dead] with auth off failed every call with the dead one's UNAVAILABLE
    const off = fakeClient(notEnabled, down);
    expect(await off.metadata()).toBeInstanceOf(Metadata);
    await off.metadata();
    expect(off.calls.tokenRequests).toBe(1);
    const failed = new EtcdAuthenticationFailedError(
      '3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
    );
    const wrong = fakeClient(() => Promise.reject(failed), down);
    await expect(wrong.metadata()).rejects.toBe(failed);
    await expect(wrong.metadata()).rejects.toBe(failed);
    expect(wrong.calls.tokenRequests).toBe(1);
  });

  it('fails the call as etcd unreachable when no host answered the token request', async () => {
    // not sent on without a token: etcd would refuse it "user name is empty", misnamed as a refusal
    const { calls, metadata } = fakeClient(down, down);
    await expect(metadata()).rejects.toBeInstanceOf(GRPCUnavailableError);
    await expect(metadata()).rejects.toBeInstanceOf(GRPCUnavailableError);
    expect(calls.tokenRequests).toBe(2);
  });
});
