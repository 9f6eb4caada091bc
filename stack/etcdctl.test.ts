import { describe, expect, it } from 'vitest';
import { getArgs, printedValue, putArgs } from './etcdctl.js';

describe('etcdctl arguments and output', () => {
  it('ends the options before a put key and value, so a value like -1 is not a flag', () => {
    expect(putArgs('/shardgate/lb/weights/api-1', '-1')).toEqual([
      'put',
      '--',
      '/shardgate/lb/weights/api-1',
      '-1',
    ]);
  });

  it('asks get for the value alone', () => {
    expect(getArgs('/shardgate/cache/enabled')).toEqual([
      'get',
      '/shardgate/cache/enabled',
      '--print-value-only',
    ]);
  });

  it('tells an absent key (no output) from an empty value (an empty line)', () => {
    expect(printedValue('')).toBeUndefined();
    expect(printedValue('\n')).toBe('');
    expect(printedValue('true\n')).toBe('true');
    expect(printedValue('{"a":1}\n{"b":2}\n')).toBe('{"a":1}\n{"b":2}');
  });
});
