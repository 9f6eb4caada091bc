import { describe, expect, it } from 'vitest';
import { parseConfigFile } from './config.js';

describe('parseConfigFile (config apply: how a file is read, and how its problem is named)', () => {
  it('a .json file: a problem the YAML reader finds is named as JSON read as YAML, not as "not valid YAML"', () => {
    const duplicate = '{"cache": {"ttl_seconds": 5}, "cache": {"ttl_seconds": 6}}';
    expect(() => parseConfigFile('dup.json', duplicate)).toThrow(
      'dup.json is not valid JSON read as YAML (of which JSON is a part): Map keys must be unique',
    );
    expect(() => parseConfigFile('DUP.JSON', duplicate)).toThrow(/^DUP\.JSON is not valid JSON read as YAML/);
  });

  it('a .json file that YAML takes but JSON does not is not valid JSON', () => {
    expect(() => parseConfigFile('comma.json', '{"cache": {"ttl_seconds": 5,}}')).toThrow(
      /^comma\.json is not valid JSON: /,
    );
  });

  it('a YAML file is named as YAML; a good file of either kind is its document', () => {
    expect(() => parseConfigFile('dup.yaml', 'cache: 1\ncache: 2\n')).toThrow(
      'dup.yaml is not valid YAML: Map keys must be unique',
    );
    expect(parseConfigFile('ok.yaml', 'cache:\n  ttl_seconds: 5\n')).toEqual({ cache: { ttl_seconds: 5 } });
    expect(parseConfigFile('ok.json', '{"cache": {"ttl_seconds": 5}}')).toEqual({
      cache: { ttl_seconds: 5 },
    });
  });

  it('a circular alias is one line naming where, not a stack trace; an alias of another node is fine', () => {
    expect(() => parseConfigFile('a.yaml', 'a: &a [*a]\n')).toThrow(
      'a.yaml is not a config tree: an alias at a.0 refers to a node that holds it (a circular structure)',
    );
    expect(() => parseConfigFile('c.yaml', 'cache: &c\n  x: *c\n')).toThrow(/an alias at cache\.x refers/);
    expect(() => parseConfigFile('t.yaml', 'tenants:\n  t1: &t\n    shard: shard-1\n    name: *t\n')).toThrow(
      /an alias at tenants\.t1\.name refers/,
    );
    expect(parseConfigFile('ok.yaml', 'x: &v 5\ncache:\n  ttl_seconds: *v\n')).toEqual({
      x: 5,
      cache: { ttl_seconds: 5 },
    });
  });
});
