import {
  EtcdAuthenticationFailedError,
  EtcdError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCInvalidArgumentError,
  GRPCUnauthenticatedError,
  GRPCUnavailableError,
} from 'etcd3';
import { describe, expect, it } from 'vitest';
import { etcdAuthRefusal } from './etcd-auth-refusal.js';

// the errors as etcd3 1.1.2 hands them over from etcd 3.4 (test/etcd-auth.test.ts meets the real ones)
describe('etcdAuthRefusal', () => {
  it('names a call etcd refused for want of a user, and the variables to set', () => {
    const refused = etcdAuthRefusal(
      new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: user name is empty'),
    );
    expect(refused).toMatch(
      /^etcd refused: authentication required .*set, or check, SHARDGATE_ETCD_USERNAME and SHARDGATE_ETCD_PASSWORD$/,
    );
    // a watch etcd cancelled for it
    expect(
      etcdAuthRefusal(
        new EtcdError(
          'Watcher canceled: rpc error: code = InvalidArgument desc = etcdserver: user name is empty',
        ),
      ),
    ).toBe(refused);
  });

  it('names wrong credentials, a stale token and a missing permission', () => {
    expect(
      etcdAuthRefusal(
        new EtcdAuthenticationFailedError(
          'EtcdAuthenticationFailedError: 3 INVALID_ARGUMENT: etcdserver: authentication failed, invalid user ID or password',
        ),
      ),
    ).toMatch(
      /^etcd refused: authentication failed \(no such user, or a wrong password\): check SHARDGATE_ETCD_USERNAME/,
    );
    expect(
      etcdAuthRefusal(
        new GRPCInvalidArgumentError('3 INVALID_ARGUMENT: etcdserver: revision of auth store is old'),
      ),
    ).toMatch(/^etcd refused: authentication \(the etcd user's token was not accepted/);
    expect(
      etcdAuthRefusal(new EtcdPermissionDeniedError('7 PERMISSION_DENIED: etcdserver: permission denied')),
    ).toMatch(
      /^etcd refused: permission denied: the roles of the etcd user \(SHARDGATE_ETCD_USERNAME\) must grant read/,
    );
  });

  it('leaves every other failure to the caller (unreachable, a deadline)', () => {
    expect(
      etcdAuthRefusal(new GRPCUnavailableError('14 UNAVAILABLE: No connection established')),
    ).toBeUndefined();
    expect(
      etcdAuthRefusal(new GRPCDeadlineExceededError('4 DEADLINE_EXCEEDED: Deadline exceeded')),
    ).toBeUndefined();
    expect(etcdAuthRefusal(new Error('connect EACCES 127.0.0.1:2379'))).toBeUndefined();
  });

  it("leaves an HTTP 401 or 403 of something else at the endpoint to the caller: not etcd's refusal", () => {
    // gRPC gives them etcd's classes (a review: a proxy's 403 read as "etcd refused: permission denied")
    expect(
      etcdAuthRefusal(new EtcdPermissionDeniedError('7 PERMISSION_DENIED: Received HTTP status code 403')),
    ).toBeUndefined();
    expect(
      etcdAuthRefusal(new GRPCUnauthenticatedError('16 UNAUTHENTICATED: Received HTTP status code 401')),
    ).toBeUndefined();
  });
});
