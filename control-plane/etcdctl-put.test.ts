import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { etcdctlPut } from './etcdctl-put.js';

/** the arguments a POSIX shell gives the command line */
function argsOf(line: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line.slice('etcdctl put '.length)}`]);
  return out.toString().split('\0').slice(0, -1);
}

describe('etcdctlPut (a command line an error suggests)', () => {
  it('a value with an apostrophe, blanks and $ reaches etcdctl as it is', () => {
    const value = JSON.stringify({ shard: 'shard-1', status: 'active', name: "O'Brien's $HOME `x`" });
    const line = etcdctlPut('/shardgate/tenants/acme', value);
    expect(line.startsWith('etcdctl put /shardgate/tenants/acme ')).toBe(true);
    expect(argsOf(line)).toEqual(['/shardgate/tenants/acme', value]);
  });

  it('a key with a blank or an apostrophe is quoted too', () => {
    expect(argsOf(etcdctlPut("/odd prefix/tenants/it's", '{}'))).toEqual(["/odd prefix/tenants/it's", '{}']);
  });
});
