import { EtcdLeaseInvalidError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { leaseLostReason } from './instance-registration.js';

describe('leaseLostReason', () => {
  it("words etcd3's lease errors, not their garbled message", () => {
    // as etcd3's Lease emits it when its keepalives went unanswered for twice the TTL
    const lost = new EtcdLeaseInvalidError('We lost connection to etcd and our lease has expired.');
    expect(lost.message).toBe(
      'Lease We lost connection to etcd and our lease has expired. is expired or revoked',
    );
    expect(leaseLostReason(lost)).toBe('no keepalive answered for twice the lease TTL: etcd unreachable');
    expect(leaseLostReason(new EtcdLeaseInvalidError('7587883'))).toBe(
      'etcd no longer holds the lease: expired or revoked',
    );
    expect(leaseLostReason(new Error('14 UNAVAILABLE: x'))).toBe('Error: 14 UNAVAILABLE: x');
  });
});
