import { describe, expect, it } from 'vitest';
import { parseConfigKey } from './schema.js';

describe('a JSON value in etcd', () => {
  it('is rejected when it gives a name twice, nested ones too, naming it', () => {
    // an outside check: the last `status` won silently, where the API and `config apply` refuse
    // a name given twice
    expect(
      parseConfigKey('tenants/acme', '{"shard":"shard-1","status":"active","status":"suspended"}'),
    ).toEqual({
      ok: false,
      reason: 'status: given more than once',
    });
    const shard =
      '{"master":{"host":"127.0.0.1","port":3316,"port":3317},"replicas":[],"database":"shardgate"}';
    expect(parseConfigKey('shards/s1', shard)).toEqual({
      ok: false,
      reason: 'master.port: given more than once',
    });
    expect(parseConfigKey('tenants/acme', '{"shard":"shard-1","status":"active"}').ok).toBe(true);
  });
});
