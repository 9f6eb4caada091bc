import { describe, expect, it } from 'vitest';
import { planChanges } from './change-plan.js';

const tenantOn = (id: string) => `{"shard":"${id}","status":"active"}`;

function readOf(entries: [string, string][]) {
  return { revision: 7, entries: new Map(entries), mods: new Map<string, number>() };
}

describe('planChanges', () => {
  it('writes no key whose new value says the same: fields in another order, or a default left out', () => {
    const read = readOf([
      [
        'shards/s1',
        '{"master":{"host":"127.0.0.1","port":3316},"replicas":[{"host":"127.0.0.1","port":3317,"weight":1}],"database":"shardgate"}',
      ],
      ['tenants/a', tenantOn('s1')],
    ]);
    const same = planChanges(
      read,
      new Map([
        [
          'shards/s1',
          '{"replicas":[{"port":3317,"host":"127.0.0.1"}],"master":{"port":3316,"host":"127.0.0.1"}}',
        ],
        ['tenants/a', '{"shard":"s1"}'],
      ]),
    );
    expect(same).toEqual([]);
    const other = planChanges(read, new Map([['tenants/a', '{"shard":"s1","status":"readonly"}']]));
    expect(other.map((c) => c.key)).toEqual(['tenants/a']);
  });
});
