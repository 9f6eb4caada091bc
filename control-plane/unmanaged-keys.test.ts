import { describe, expect, it } from 'vitest';
import { unmanagedKeyProblems } from './unmanaged-keys.js';

describe('unmanagedKeyProblems', () => {
  it('names an unknown section once, with how many keys it holds and the nearest section', () => {
    const problems = unmanagedKeyProblems(['cach/ttl_seconds', 'cach/enabled', 'cach/near_max_entries']);
    expect(problems).toHaveLength(1);
    expect(problems[0]!.key).toBe('cach');
    expect(problems[0]!.reason).toMatch(
      /^not a config section \(3 key\(s\) under it; the sections are shards, tenants, placement, breakers, cache, /,
    );
    expect(problems[0]!.reason).toMatch(/: did you mean cache\?$/);
  });

  it('guesses nothing for a name far from every section', () => {
    const [problem] = unmanagedKeyProblems(['frobnicate/x']);
    expect(problem!.key).toBe('frobnicate');
    expect(problem!.reason).not.toContain('did you mean');
  });

  it('says the sections shardgate writes itself are not applied', () => {
    const problems = unmanagedKeyProblems(['instances/api-1', 'runtime/cache_epoch']);
    expect(problems.map((p) => p.key)).toEqual(['instances', 'runtime']);
    for (const p of problems)
      expect(p.reason).toBe('written by shardgate itself, not by config apply: leave it out');
  });

  it('names a key under a managed name that is none of its keys as itself, in the file order', () => {
    const problems = unmanagedKeyProblems(['placement/x', 'Breakers/a', 'placement/y']);
    expect(problems).toEqual([
      { key: 'placement/x', reason: 'not a managed config key' },
      { key: 'placement/y', reason: 'not a managed config key' },
      expect.objectContaining({ key: 'Breakers', reason: expect.stringMatching(/did you mean breakers\?$/) }),
    ]);
  });
});
