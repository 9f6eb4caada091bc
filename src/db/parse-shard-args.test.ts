import { describe, expect, it } from 'vitest';
import { parseShardArgs } from './parse-shard-args.js';

describe('parseShardArgs', () => {
  it('names no shard without arguments (every shard in etcd)', () => {
    expect(parseShardArgs([])).toEqual({ ok: true, named: undefined });
  });

  it('takes --shard <id> and --shard=<id>, repeated, once each', () => {
    const args = parseShardArgs(['--shard', 'shard-1', '--shard=shard-2', '--shard', 'shard-1']);
    expect(args).toEqual({ ok: true, named: new Set(['shard-1', 'shard-2']) });
  });

  it('refuses a --shard without an id, naming the option', () => {
    for (const argv of [['--shard'], ['--shard='], ['--shard', '--shard', 'x']]) {
      const args = parseShardArgs(argv);
      expect(args.ok).toBe(false);
      expect(!args.ok && args.reason).toMatch(/^--shard needs a shard id/);
    }
  });

  it('refuses any other argument, naming it', () => {
    const args = parseShardArgs(['shard-1']);
    expect(args).toEqual({ ok: false, reason: expect.stringMatching(/^unknown argument "shard-1"/) });
  });
});
