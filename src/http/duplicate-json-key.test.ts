import { describe, expect, it } from 'vitest';
import { duplicateJsonKey } from './duplicate-json-key.js';

describe('duplicateJsonKey', () => {
  it('finds a name given twice in one object, with its path', () => {
    expect(duplicateJsonKey('{"isbn":"1","title":"T1","title":"T2"}')).toBe('title');
    expect(duplicateJsonKey('{"a":{"b":1,"c":[1,{"d":1,"d":2}]}}')).toBe('a.c.1.d');
    // as JSON decodes the names: an escape spells the same name
    expect(duplicateJsonKey('{"title":"A","\\u0074itle":"B"}')).toBe('title');
    expect(duplicateJsonKey('{ "x" : 1 ,\n "x" : 2 }')).toBe('x');
  });

  it('passes names that repeat only across objects, in values, or in strings', () => {
    for (const ok of [
      '{"a":1,"b":2}',
      '{"a":{"a":1},"b":{"a":2}}',
      '[{"a":1},{"a":2}]',
      '{"a":"a","b":"a"}',
      '{"a":"x\\"b\\":1,\\"a","b":[",","a"]}',
      '{"a":[1,2,3],"b":{"c":"}"}}',
      '{}',
      '[]',
      '"a"',
      '',
    ])
      expect(duplicateJsonKey(ok), ok).toBeUndefined();
  });

  it('leaves text that is not JSON to the parser', () => {
    expect(duplicateJsonKey('{"a\\x":1,"a\\x":2}')).toBeUndefined();
    expect(() => duplicateJsonKey('{"a":1,"a')).not.toThrow();
    expect(() => duplicateJsonKey('}}]]{')).not.toThrow();
  });
});
