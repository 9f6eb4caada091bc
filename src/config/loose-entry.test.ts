import { describe, expect, it } from 'vitest';
import { looseEntry, looseTenantEntry } from './loose-entry.js';

describe('looseEntry', () => {
  it('is the value as a JSON object, every field as written', () => {
    expect(looseEntry('{"shard":"s1","weight":2,"x":{"y":null}}')).toEqual({
      shard: 's1',
      weight: 2,
      x: { y: null },
    });
  });

  it.each([
    undefined,
    '',
    'not json',
    '{"shard":',
    'null',
    '[]',
    '[{"shard":"s1"}]',
    '5',
    '"s1"',
    'true',
  ])('is undefined for %j: absent, not JSON, or JSON that is no object', (raw) => {
    expect(looseEntry(raw)).toBeUndefined();
  });
});

describe('looseTenantEntry', () => {
  it('names the shard, status and name a value gives as strings, and nothing else', () => {
    expect(looseTenantEntry('{"shard":"s1","status":"sleepy","name":"A","extra":1}')).toEqual({
      shard: 's1',
      status: 'sleepy',
      name: 'A',
    });
    expect(looseTenantEntry('{"shard":"s1"}')).toEqual({ shard: 's1' });
  });

  it('leaves out a field of another type: an entry the schema rejects names what it can', () => {
    expect(looseTenantEntry('{"shard":7,"status":null,"name":["A"]}')).toEqual({});
    expect(looseTenantEntry('{"shard":{"id":"s1"},"status":"active"}')).toEqual({ status: 'active' });
  });

  it.each([undefined, 'not json', 'null', '[]', '5', '"s1"'])('is undefined for %j', (raw) => {
    expect(looseTenantEntry(raw)).toBeUndefined();
  });
});
