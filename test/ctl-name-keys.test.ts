/**
 * `config apply` of a file whose map keys YAML reads as no name (`007:` is the number 7): refused
 * in one line naming each key as written, where it used to plan `tenants/7` (another id) and exit 0.
 * Dry runs only: nothing is written.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ctl } from './helpers/ctl.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-ctl-keys-'));

describe('config apply: keys written as numbers', () => {
  it('refuses tenant ids and weight ids YAML reads as numbers, naming each as written, in one line', () => {
    const file = join(dir, 'numbers.yaml');
    writeFileSync(
      file,
      [
        'tenants:',
        '  007:',
        '    shard: shard-1',
        '    status: readonly',
        '  1e3: {shard: shard-1, status: readonly}',
        '  0x10: {shard: shard-1, status: readonly}',
        'lb:',
        '  weights: {007: 0}',
        '',
      ].join('\n'),
    );
    const r = ctl(['config', 'apply', '-f', file, '--dry-run']);
    expect(r.code, r.stdout).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n')).toHaveLength(2);
    for (const key of ['tenants/007', 'tenants/1e3', 'tenants/0x10', 'lb/weights/007'])
      expect(r.stderr).toContain(`invalid /shardgate/${key}: a key YAML reads as the number`);
    expect(r.stderr).toContain('quote it ("007")');
    // the ids YAML made of them are no keys of the file
    for (const key of ['tenants/7', 'tenants/1000', 'tenants/16', 'lb/weights/7'])
      expect(r.stderr).not.toContain(`/shardgate/${key}:`);
  });

  it('refuses a boolean or null key; the same ids quoted pass the check', () => {
    const bad = join(dir, 'bool.yaml');
    writeFileSync(bad, 'lb:\n  weights:\n    true: 1\n    ~: 2\n');
    const r = ctl(['config', 'apply', '-f', bad, '--dry-run']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('invalid /shardgate/lb/weights/true: a key YAML reads as the boolean true');
    expect(r.stderr).toContain('invalid /shardgate/lb/weights/~: a key YAML reads as null');
    const quoted = join(dir, 'quoted.yaml');
    writeFileSync(quoted, 'tenants:\n  "007": {shard: shard-1, status: readonly}\n');
    const ok = ctl(['config', 'apply', '-f', quoted, '--dry-run']);
    expect(ok.stderr).not.toContain('a key YAML reads as');
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('+ tenants/007');
  });
});
