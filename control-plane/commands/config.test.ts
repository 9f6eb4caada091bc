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
});
