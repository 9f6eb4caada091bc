import { EtcdLeaseInvalidError } from 'etcd3';
import { describe, expect, it } from 'vitest';
import { leaseLostReason, MAX_REJECTED_TENANTS, registrationValue } from './instance-registration.js';
import { instanceSchema } from './schema.js';

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

describe('registrationValue', () => {
  it('lists the rejected tenant ids only when there are some, sorted, at most 100, and says when it left some out', () => {
    expect(JSON.parse(registrationValue('http://h:1', 7, 'T'))).toEqual({
      url: 'http://h:1',
      configRevision: 7,
      startedAt: 'T',
    });
    expect(JSON.parse(registrationValue('http://h:1', 7, 'T', ['b', 'a', 'b']))).toMatchObject({
      rejectedTenants: ['a', 'b'],
    });
    const many = Array.from({ length: MAX_REJECTED_TENANTS + 1 }, (_, i) => `t${String(i).padStart(3, '0')}`);
    const value = JSON.parse(registrationValue('http://h:1', 7, 'T', many));
    expect(value.rejectedTenants).toHaveLength(MAX_REJECTED_TENANTS);
    expect(value.rejectedTenantsTruncated).toBe(true);
    // what the CLI reads back
    expect(instanceSchema.safeParse(value).success).toBe(true);
  });

  it('names the build the instance runs when it knows it', () => {
    const value = JSON.parse(registrationValue('http://h:1', 7, 'T', [], '0.1.0+1a2b3c4d5e6f'));
    expect(value).toEqual({
      url: 'http://h:1',
      configRevision: 7,
      startedAt: 'T',
      build: '0.1.0+1a2b3c4d5e6f',
    });
    expect(instanceSchema.parse(value).build).toBe('0.1.0+1a2b3c4d5e6f');
  });
});
