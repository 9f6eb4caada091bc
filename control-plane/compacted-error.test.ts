import { GRPCOutOfRangeError, GRPCUnavailableError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { isCompactedError } from './compacted-error.js';

describe('isCompactedError', () => {
  it("is true for etcd's answer to a read at a compacted revision, and nothing else", () => {
    expect(
      isCompactedError(
        new GRPCOutOfRangeError('11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted'),
      ),
    ).toBe(true);
    expect(
      isCompactedError(
        new GRPCOutOfRangeError('11 OUT_OF_RANGE: etcdserver: mvcc: required revision is a future revision'),
      ),
    ).toBe(false);
    expect(isCompactedError(new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'))).toBe(false);
    expect(isCompactedError('required revision has been compacted')).toBe(false);
    expect(isCompactedError(undefined)).toBe(false);
  });
});
