import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeResultFile } from './result-file.js';

const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('writeResultFile', () => {
  it('names the file by day, commit and suffix, and numbers later runs instead of overwriting', () => {
    const at = { date: '2026-11-30T12:00:00.000Z', sha: 'abc1234', suffix: '-data-path' };
    const first = writeResultFile(join(dir, 'results'), at, { run: 1 });
    const second = writeResultFile(join(dir, 'results'), at, { run: 2 });
    const third = writeResultFile(join(dir, 'results'), at, { run: 3 });
    expect([first, second, third].map((f) => basename(f))).toEqual([
      '2026-11-30-abc1234-data-path.json',
      '2026-11-30-abc1234-data-path-2.json',
      '2026-11-30-abc1234-data-path-3.json',
    ]);
    expect(JSON.parse(readFileSync(first, 'utf8'))).toEqual({ run: 1 });
    expect(JSON.parse(readFileSync(third, 'utf8'))).toEqual({ run: 3 });
  });
});
