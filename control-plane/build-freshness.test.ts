import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { buildIsStale as stale } from './bin/build-freshness.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** a checkout with one source file and a build, each at the given time (seconds) */
function checkout(sourceAt: number, builtAt: number | undefined): string {
  const root = mkdtempSync(join(tmpdir(), 'ctl-freshness-'));
  dirs.push(root);
  mkdirSync(join(root, 'control-plane', 'commands'), { recursive: true });
  const src = join(root, 'control-plane', 'commands', 'x.ts');
  writeFileSync(src, '');
  utimesSync(src, sourceAt, sourceAt);
  if (builtAt !== undefined) {
    mkdirSync(join(root, 'dist', 'src', 'entry'), { recursive: true });
    const entry = join(root, 'dist', 'src', 'entry', 'node.js');
    writeFileSync(entry, '');
    utimesSync(entry, builtAt, builtAt);
  }
  return root;
}

describe('buildIsStale (the shardgate-ctl launcher runs dist/ only when it is not)', () => {
  it('is stale without a build, or with a build older than a source file', () => {
    expect(stale(checkout(1000, undefined))).toBe(true);
    expect(stale(checkout(2000, 1000))).toBe(true);
  });

  it('is fresh when the build is newer than every source file; test files do not count', () => {
    const root = checkout(1000, 2000);
    expect(stale(root)).toBe(false);
    const test = join(root, 'control-plane', 'x.test.ts');
    writeFileSync(test, '');
    utimesSync(test, 3000, 3000);
    expect(stale(root)).toBe(false);
  });

  it('is stale when a file the caller also needs is missing', () => {
    const root = checkout(1000, 2000);
    expect(stale(root, [join(root, 'dist', 'control-plane', 'cli.js')])).toBe(true);
  });
});
