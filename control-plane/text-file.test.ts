import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from './ctl-errors.js';
import { readTextFile, writeTextFile } from './text-file.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-text-file-'));

describe('readTextFile / writeTextFile', () => {
  it('round-trips a file', () => {
    const file = join(dir, 'ok.yaml');
    writeTextFile(file, 'a: 1\n');
    expect(readTextFile(file)).toBe('a: 1\n');
    expect(readFileSync(file, 'utf8')).toBe('a: 1\n');
  });

  it('words every failure as one UserError naming the file and the reason', () => {
    const cases: [() => unknown, string][] = [
      [
        () => writeTextFile(join(dir, 'no-dir', 'x.yaml'), ''),
        `cannot write ${join(dir, 'no-dir', 'x.yaml')}: directory ${join(dir, 'no-dir')} does not exist`,
      ],
      [() => writeTextFile(dir, ''), `cannot write ${dir}: it is a directory`],
      [
        () => readTextFile(join(dir, 'missing.yaml')),
        `cannot read ${join(dir, 'missing.yaml')}: no such file`,
      ],
      [() => readTextFile(dir), `cannot read ${dir}: it is a directory`],
      [
        () => readTextFile(join(dir, 'ok.yaml', 'x')),
        `cannot read ${join(dir, 'ok.yaml', 'x')}: a part of its path is not a directory`,
      ],
    ];
    for (const [run, message] of cases) {
      expect(run).toThrow(UserError);
      expect(run).toThrow(message);
    }
  });
});
