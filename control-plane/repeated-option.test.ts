import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { collect } from './ctl-program.js';
import { repeatedOption } from './repeated-option.js';

function command(): Command {
  return new Command('x')
    .option('--shard <id>', 'one shard')
    .option('-o, --output <file>', 'a file')
    .option('--id <id>', 'repeatable', collect)
    .option('--json', 'a flag');
}
const check = (args: string[]) => repeatedOption(command(), args, (o) => o.parseArg === collect);

describe('repeatedOption', () => {
  it('names a value option given twice, in any spelling', () => {
    expect(check(['--shard', 'a', '--shard', 'b'])).toEqual({ flags: '--shard <id>', times: 2 });
    expect(check(['--shard=a', '--shard', 'b', '--shard=c'])).toEqual({ flags: '--shard <id>', times: 3 });
    expect(check(['-o', 'a', '--output=b'])).toEqual({ flags: '-o, --output <file>', times: 2 });
    expect(check(['-oa', '-o', 'b'])).toEqual({ flags: '-o, --output <file>', times: 2 });
  });

  it('lets a collecting option repeat, a flag repeat, and stops at --', () => {
    expect(check(['--id', 'a', '--id', 'b', '--shard', 'x'])).toBeUndefined();
    expect(check(['--json', '--json'])).toBeUndefined();
    expect(check(['--shard', 'a', '--', '--shard'])).toBeUndefined();
    expect(check(['--shard-x', '--shard', 'a'])).toBeUndefined();
  });
});
