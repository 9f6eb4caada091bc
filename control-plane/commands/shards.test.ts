import { describe, expect, it } from 'vitest';
import { loadState, type PrefixRead } from '../prefix-read.js';
import { shardLines, shardRows } from './shards.js';

const GOOD = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}';
function read(entries: Record<string, string>): PrefixRead {
  return { revision: 1, entries: new Map(Object.entries(entries)), mods: new Map() };
}

describe('shardRows', () => {
  it('lists a shard key the schema rejects, with its problem and what its value names', () => {
    const r = read({
      'shards/ca-a': GOOD,
      'shards/ca-b': '{not json',
      'shards/ca-c': '{"master":{"host":"10.0.0.1","port":3316},"replicas":[],"extra":1}',
    });
    const rows = shardRows(r, loadState(r));
    expect(rows.map((x) => x.id)).toEqual(['ca-a', 'ca-b', 'ca-c']);
    expect(rows[0]).not.toHaveProperty('problem');
    expect(rows[1]).toMatchObject({ master: null, problem: 'must be valid JSON', value: '{not json' });
    expect(rows[2]).toMatchObject({ master: { host: '10.0.0.1', port: 3316 } });
    expect(rows[2]!.problem).toBeTruthy();
    const lines = shardLines(rows);
    expect(lines[0]).not.toContain('problem');
    expect(lines[1]).toMatch(/^ca-b +master \? .*problem: must be valid JSON$/);
  });

  it('marks a shard the instances reject, naming them, when this command takes it', () => {
    const r = read({ 'shards/ca-a': GOOD });
    const reason = 'master 127.0.0.1:3316 not in SHARDGATE_DB_HOSTS (10.0.0.1)';
    const rows = shardRows(
      r,
      loadState(r),
      new Map([
        ['api-1', [{ key: 'shards/ca-a', reason }]],
        ['api-2', [{ key: 'shards/ca-a', reason }]],
      ]),
    );
    expect(rows[0]).toMatchObject({
      master: { host: '127.0.0.1', port: 3316 },
      problem: `rejected by api-1, api-2: ${reason}`,
      rejectedBy: ['api-1', 'api-2'],
    });
    expect(shardLines(rows)[0]).toContain(`problem: rejected by api-1, api-2: ${reason}`);
  });
});
