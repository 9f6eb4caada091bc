import { describe, expect, it } from 'vitest';
import { isPlainNumberText, jsonNumberTokens, nonPlainNumbers } from './plain-numbers.js';

describe('nonPlainNumbers (a config file number not written as plain digits)', () => {
  it('names each number YAML reads from other text than decimal digits, by its etcd key', () => {
    const text = [
      'cache:',
      '  ttl_seconds: 1e2',
      'breakers:',
      '  default:',
      '    failure_threshold: 0x3e',
      '    reset_timeout_ms: 0o76',
      '    half_open_max_calls: -0',
      '    call_timeout_ms: +5',
      'lb:',
      '  weights:',
      '    api-1: 10.0',
      '    api-2: 007',
      '    api-3: .inf',
      'shards:',
      '  s1: {master: {host: h, port: 3316}, replicas: [{host: r, port: 3317, weight: 1e0}]}',
      '',
    ].join('\n');
    const found = nonPlainNumbers(text);
    expect(found.map((n) => n.key)).toEqual([
      'cache/ttl_seconds',
      'breakers/default/failure_threshold',
      'breakers/default/reset_timeout_ms',
      'breakers/default/half_open_max_calls',
      'breakers/default/call_timeout_ms',
      'lb/weights/api-1',
      'lb/weights/api-2',
      'lb/weights/api-3',
      'shards/s1',
    ]);
    expect(found[0]!.reason).toBe(
      'written 1e2, which YAML reads as 100: write a number as decimal digits only, without sign, fraction, exponent, base prefix or leading zero (100)',
    );
    expect(found.at(-1)!.reason).toMatch(/^replicas\.0\.weight: written 1e0, which YAML reads as 1:/);
  });

  it('passes plain digits, however large (the schema judges the range), strings and the export revision', () => {
    const text =
      'cache:\n  ttl_seconds: 61\n  near_max_entries: 0\nbreakers:\n  default:\n    failure_threshold: 99999999999999999999999\nlb:\n  weights: {api-1: "1e2"}\n';
    expect(nonPlainNumbers(text)).toEqual([]);
    expect(nonPlainNumbers('{"$etcdRevision": 1e3, "cache": {"ttl_seconds": 61}}')).toEqual([]);
  });

  it('judges a JSON file as YAML: 10.0 and 1E2 are refused there too', () => {
    const found = nonPlainNumbers('{"cache": {"ttl_seconds": 10.0}, "lb": {"weights": {"a": 1E2}}}');
    expect(found.map((n) => n.key)).toEqual(['cache/ttl_seconds', 'lb/weights/a']);
  });

  it('names JSON, not YAML, in the reasons for a JSON file, the keys and fields named alike', () => {
    const found = nonPlainNumbers(
      '{"cache": {"ttl_seconds": 1e2}, "shards": {"s1": {"master": {"host": "h", "port": 3316}, "replicas": [{"host": "r", "port": 3317, "weight": 1e0}]}}}',
      { format: 'JSON' },
    );
    expect(found.map((n) => n.key)).toEqual(['cache/ttl_seconds', 'shards/s1']);
    expect(found[0]!.reason).toBe(
      'written 1e2, which JSON reads as 100: write a number as decimal digits only, without sign, fraction, exponent, base prefix or leading zero (100)',
    );
    expect(found[1]!.reason).toMatch(/^replicas\.0\.weight: written 1e0, which JSON reads as 1:/);
    expect(found.map((n) => n.reason).join(' ')).not.toContain('YAML');
  });

  it('takes the text `lb weight` takes, less blanks and leading zeros', () => {
    for (const ok of ['0', '7', '256', '99999999999999999999999'])
      expect(isPlainNumberText(ok), ok).toBe(true);
    for (const bad of ['007', '00', ' 7', '7 ', '+7', '-0', '7.0', '1e2', '0x3e', '1_000', ''])
      expect(isPlainNumberText(bad), JSON.stringify(bad)).toBe(false);
  });

  it('judges the numbers inside a shard, tenant or placement written as one JSON string, not its strings', () => {
    const text = [
      'shards:',
      `  s1: '{"master":{"host":"h","port":3.316e3},"replicas":[{"host":"r","port":3317,"weight":1e0}]}'`,
      `  s2: '{"master":{"host":"h","port":3326}}'`,
      'tenants:',
      `  t1: '{"shard":"s2","name":"Room 1e2 -0 10.0"}'`,
      `  t2: '{"shard":"s2","name":"Esc \\" 7.0","x":-0}'`,
    ].join('\n');
    const found = nonPlainNumbers(text);
    expect(found.map((n) => [n.key, n.reason.split(':')[0]])).toEqual([
      ['shards/s1', 'the JSON text writes a number 3.316e3'],
      ['shards/s1', 'the JSON text writes a number 1e0'],
      ['tenants/t2', 'the JSON text writes a number -0'],
    ]);
  });

  it('follows an alias, also of an anchor on the export revision, and stops at a recursive one', () => {
    const found = nonPlainNumbers('$etcdRevision: &w 0x10\nlb:\n  weights:\n    api-1: *w\n');
    expect(found.map((n) => n.key)).toEqual(['lb/weights/api-1']);
    expect(nonPlainNumbers('lb: &a\n  weights:\n    api-1: 1\n    loop: *a\n')).toEqual([]);
  });

  it('reads the number tokens of JSON text outside its strings', () => {
    expect(jsonNumberTokens('{"a":[1,-2.5e+3,0],"b":"7 \\"8\\" 9","c":10}')).toEqual([
      '1',
      '-2.5e+3',
      '0',
      '10',
    ]);
  });
});
