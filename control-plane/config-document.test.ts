import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { scalarSchemas } from '../src/config/schema.js';
import { canonical, isManagedKey, planChanges } from './change-plan.js';
import { fromDocument, nonNameKeys, readDocument, toDocument, toYaml } from './config-document.js';
import { terminalSafe } from './terminal-safe.js';

describe('config document', () => {
  const entries = new Map([
    ['shards/shard-1', '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}'],
    ['tenants/acme', '{"shard":"shard-1","status":"active"}'],
    ['placement', '{"strategy":"least-tenants","shards":["shard-1"]}'],
    ['breakers/redis/failure_threshold', '7'],
    ['cache/enabled', 'true'],
    ['lb/weights/api-1', '3'],
  ]);

  it('round-trips through YAML to the same keys with no changes', () => {
    const back = fromDocument(parse(stringify(toDocument(entries))));
    const read = { revision: 5, entries, mods: new Map<string, number>() };
    expect(planChanges(read, back)).toEqual([]);
    expect([...back.keys()].sort()).toEqual([...entries.keys()].sort());
  });

  it('keeps an invalid scalar as text so validation can name it', () => {
    const doc = toDocument(new Map([['breakers/redis/failure_threshold', 'banana']]));
    expect(fromDocument(doc).get('breakers/redis/failure_threshold')).toBe('banana');
  });

  it('writes a number YAML reads with an exponent as plain digits, so the schema says it is out of range', () => {
    const doc = parse(
      'cache:\n  ttl_seconds: 99999999999999999999999\nreplication:\n  max_lag_seconds: 0.0000001\n',
    );
    const entries = fromDocument(doc);
    expect(entries.get('cache/ttl_seconds')).toBe('100000000000000000000000');
    expect(entries.get('replication/max_lag_seconds')).toBe('0.0000001');
  });

  it('gives apart a number or a boolean written as a string; an exported value with blanks passes', () => {
    const doc = parse(
      'cache:\n  ttl_seconds: "61"\n  enabled: "true"\nlb:\n  weights:\n    api-1: !!str 2\nbreakers:\n  redis:\n    failure_threshold: "banana"\n',
    );
    expect(readDocument(doc).quoted).toEqual(['cache/ttl_seconds', 'cache/enabled', 'lb/weights/api-1']);
    const exported = toDocument(
      new Map([
        ['cache/enabled', 'true\n'],
        ['cache/ttl_seconds', ' 7'],
      ]),
    );
    expect(readDocument(parse(stringify(exported))).quoted).toEqual([]);
  });

  it('gives apart a number or a boolean written as a string whatever blanks it holds', () => {
    // an outside check: " 61", "61\n" and "\ufeff61 " were applied, blanks and BOM written to etcd
    const doc = parse(
      'cache:\n  ttl_seconds: " 61"\n  near_max_entries: "61\\n"\n  enabled: " true"\nreplication:\n  max_lag_seconds: "\\ufeff61 "\n',
    );
    expect(readDocument(doc).quoted).toEqual([
      'cache/ttl_seconds',
      'cache/near_max_entries',
      'cache/enabled',
      'replication/max_lag_seconds',
    ]);
  });

  it('exports a boolean with blanks around it as the boolean, so the file applies as no change', () => {
    const entries = new Map([['cache/enabled', 'true\n']]);
    const back = fromDocument(parse(stringify(toDocument(entries))));
    expect(back.get('cache/enabled')).toBe('true');
    expect(planChanges({ revision: 5, entries, mods: new Map<string, number>() }, back)).toEqual([]);
  });

  it('toYaml double-quotes a string with a control, separator or bidi character, so the output guard keeps its value', () => {
    const entries = new Map([
      ['tenants/t1', '{"shard":"s1","name":"Caf\\u200ee \\u202egnp \\u2028 x"}'],
      ['tenants/t\u001bk', '{"shard":"s1","name":"plain"}'],
    ]);
    const text = terminalSafe(toYaml(toDocument(entries)));
    expect(/[\p{Cc}\u200e\u202e\u2028]/u.test(text.replace(/\n/g, ''))).toBe(false);
    const back = fromDocument(parse(text));
    expect([...back.keys()].sort()).toEqual([...entries.keys()].sort());
    for (const [key, value] of entries) expect(JSON.parse(back.get(key)!)).toEqual(JSON.parse(value));
    // a plain name stays plain
    expect(text).toContain('name: plain');
  });

  it('names every empty leaf in one message', () => {
    expect(() =>
      fromDocument({ cache: { ttl_seconds: null }, breakers: { redis: { failure_threshold: null } } }),
    ).toThrow('cache/ttl_seconds: empty value; breakers/redis/failure_threshold: empty value');
  });

  it('readDocument gives the empty leaves apart from the keys, so they are named with the other problems', () => {
    const { entries, empty } = readDocument({
      cach: { ttl_seconds: 5 },
      cache: { ttl_seconds: null },
      breakers: { redis: { failure_threshold: 'banana' } },
    });
    expect(empty).toEqual(['cache/ttl_seconds']);
    expect([...entries]).toEqual([
      ['cach/ttl_seconds', '5'],
      ['breakers/redis/failure_threshold', 'banana'],
    ]);
    expect(() => readDocument(['cache'])).toThrow('config file must be a YAML mapping');
  });

  it('nonNameKeys names every key YAML reads as a number, a boolean or null, as written, with its parsed path', () => {
    const text = [
      'tenants:',
      '  007:',
      '    shard: shard-1',
      '  1e3: {shard: shard-1, status: readonly}',
      '  0x10: {shard: shard-1, status: readonly}',
      '  "008": {shard: shard-1}',
      '  acme: {shard: shard-1, 1: x}',
      'lb:',
      '  weights: {007: 0, true: 1, ~: 2, api-1: 3}',
      '',
    ].join('\n');
    const found = nonNameKeys(text);
    expect(found.map((f) => [f.key, f.parsedPath])).toEqual([
      ['tenants/007', 'tenants/7'],
      ['tenants/1e3', 'tenants/1000'],
      ['tenants/0x10', 'tenants/16'],
      ['tenants/acme/1', 'tenants/acme/1'],
      ['lb/weights/007', 'lb/weights/7'],
      ['lb/weights/true', 'lb/weights/true'],
      ['lb/weights/~', 'lb/weights/'],
    ]);
    expect(found[0]!.reason).toBe('a key YAML reads as the number 7, not as the name 007: quote it ("007")');
    // the parsed document has them under the other id, which is what the check guards against
    expect([...readDocument(parse(text)).entries.keys()]).toContain('lb/weights/7');
    // quoted keys, and an export's own text, pass
    expect(nonNameKeys('lb:\n  weights:\n    "1e3": 5\n    \'007\': 1\n')).toEqual([]);
    expect(
      nonNameKeys(
        toYaml(
          toDocument(
            new Map([
              ['lb/weights/007', '1'],
              ['tenants/1e3', '{}'],
            ]),
          ),
        ),
      ),
    ).toEqual([]);
  });

  it('compares JSON values semantically', () => {
    expect(canonical('{"b":1, "a":{"d":2,"c":3}}')).toBe(canonical('{"a":{"c":3,"d":2},"b":1}'));
  });
});

describe('managed keys', () => {
  it('every plain setting of the schema is managed by config export/apply; instances/ is not', () => {
    for (const key of Object.keys(scalarSchemas)) expect(isManagedKey(key)).toBe(true);
    expect(isManagedKey('mail/outbox_retention_hours')).toBe(true);
    expect(isManagedKey('instances/api-1')).toBe(false);
  });
});
