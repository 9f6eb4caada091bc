import { describe, expect, it } from 'vitest';
import { readDocument, toDocument } from './config-document.js';
import { exportableEntries } from './export-keys.js';

const TENANT = '{"shard":"shard-1","status":"active"}';

describe('exportableEntries (config export)', () => {
  it('leaves out a nested unknown key and an unknown top-level key, naming them; keeps the rest', () => {
    const entries = new Map([
      ['tenants/cb-x', TENANT],
      ['tenants/cb-x/sub', TENANT],
      ['tenants/cb-y/sub', TENANT],
      ['cb-topkey', 'x'],
      ['placement/x', '1'],
      ['cache/bogus', '1'],
      ['cache/ttl_seconds', 'abc'],
      ['breakers/bogus/failure_threshold', '3'],
      ['tenants/BAD', TENANT],
      ['instances/api-1', '{}'],
      ['runtime/cache_epoch', '3'],
      ['moving/cb-x', '{}'],
    ]);
    const { entries: kept, leftOut } = exportableEntries(entries);
    expect(leftOut).toEqual([
      'cache/bogus',
      'cb-topkey',
      'placement/x',
      'tenants/cb-x/sub',
      'tenants/cb-y/sub',
    ]);
    expect([...kept.keys()].sort()).toEqual([
      'breakers/bogus/failure_threshold',
      'cache/ttl_seconds',
      'tenants/BAD',
      'tenants/cb-x',
    ]);
    // what is exported reads back as the same keys, the tenant unchanged by its nested key
    const back = readDocument(toDocument(kept)).entries;
    expect([...back.keys()].sort()).toEqual([...kept.keys()].sort());
    expect(JSON.parse(back.get('tenants/cb-x')!)).toEqual(JSON.parse(TENANT));
  });
});
