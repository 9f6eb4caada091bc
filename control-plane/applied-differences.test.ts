import { describe, expect, it } from 'vitest';
import { appliedDifferences, differenceLine } from './applied-differences.js';

const etcd = {
  breakers: { redis: { call_timeout_ms: 2000, failure_threshold: 5 } },
  cache: { enabled: true, ttlSeconds: 60, epoch: 1, tenantEpochs: new Map() },
  cors: { allowedOrigins: [] },
};

describe('appliedDifferences', () => {
  it('names each setting a process enforces with another value, grouped by value', () => {
    const applied = new Map<string, Record<string, unknown> | undefined>([
      ['api-1', { breakers: { redis: { call_timeout_ms: 250, failure_threshold: 5 } }, cache: etcd.cache }],
      ['api-2', { breakers: { redis: { call_timeout_ms: 250, failure_threshold: 5 } } }],
      ['worker x', { breakers: { redis: { call_timeout_ms: 300, failure_threshold: 5 } } }],
    ]);
    const d = appliedDifferences(etcd, applied);
    expect(d).toEqual([
      {
        setting: 'breakers.redis.call_timeout_ms',
        etcd: '2000',
        enforced: [
          { value: '250', by: ['api-1', 'api-2'] },
          { value: '300', by: ['worker x'] },
        ],
      },
    ]);
    expect(differenceLine(d[0]!)).toMatch(
      /^breakers\.redis\.call_timeout_ms: api-1, api-2 enforce 250; worker x enforce 300, where etcd's keys give 2000 \(/,
    );
  });

  it('ignores state (the cache epochs), a process that did not answer, and a setting a process does not report', () => {
    const applied = new Map<string, Record<string, unknown> | undefined>([
      ['api-1', { cache: { enabled: true, ttlSeconds: 60, epoch: 99, tenantEpochs: 3 } }],
      ['api-2', undefined],
      ['old', { breakers: {} }],
    ]);
    expect(appliedDifferences(etcd, applied)).toEqual([]);
  });

  it('compares lists as a whole', () => {
    const applied = new Map([['api-1', { cors: { allowedOrigins: ['https://a.example'] } }]]);
    expect(appliedDifferences(etcd, applied)).toMatchObject([
      {
        setting: 'cors.allowedOrigins',
        etcd: '[]',
        enforced: [{ value: '["https://a.example"]', by: ['api-1'] }],
      },
    ]);
  });
});
