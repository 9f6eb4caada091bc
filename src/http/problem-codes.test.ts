/**
 * The "Problem codes" table of docs/http-api.md names every `code` an answer can carry: the app's
 * own (a problem written with `code: '…'`, a domain failure `fail(kind, '…')`, a route's 409s) and
 * HAProxy's (stack/haproxy-config.ts). A code added without a line there fails this test, so the
 * table a client reads does not fall behind the code.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { problemCodeRows } from './problem-code-table.js';

const ROOT = join(import.meta.dirname, '..', '..');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return name.endsWith('.ts') && !name.endsWith('.test.ts') ? [path] : [];
  });
}

/** the codes the source writes into problem answers */
function codesInSource(): Set<string> {
  const found = new Set<string>();
  const files = [...sources(join(ROOT, 'src')), join(ROOT, 'stack', 'haproxy-config.ts')];
  for (const file of files) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/\bcode: '([a-z_]+)'/g)) found.add(m[1]!);
    for (const m of text.matchAll(/\bfail\(\s*'[a-z_]+',\s*'([a-z_]+)'/g)) found.add(m[1]!);
    for (const m of text.matchAll(/\bunauthorized\('([a-z_]+)'/g)) found.add(m[1]!);
    for (const m of text.matchAll(/\brefuse\(\d+, '([a-z_]+)'/g)) found.add(m[1]!);
    for (const m of text.matchAll(/conflicts\(\{\s*([a-z_]+):/g)) found.add(m[1]!);
  }
  // zod's issue code, never an answer's
  found.delete('custom');
  return found;
}

function codesInDocs(): Set<string> {
  const doc = readFileSync(join(ROOT, 'docs', 'http-api.md'), 'utf8');
  return new Set(problemCodeRows(doc).flatMap((row) => row.codes));
}

describe('docs/http-api.md problem codes', () => {
  it('lists every code the app and HAProxy answer with, and none that no answer has', () => {
    const source = codesInSource();
    const documented = codesInDocs();
    expect(source.size).toBeGreaterThan(30);
    expect(
      [...source].filter((c) => !documented.has(c)).sort(),
      'in the code, not in docs/http-api.md',
    ).toEqual([]);
    expect(
      [...documented].filter((c) => !source.has(c)).sort(),
      'in docs/http-api.md, not in the code',
    ).toEqual([]);
  });
});
