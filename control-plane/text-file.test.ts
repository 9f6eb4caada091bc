import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UserError } from './ctl-errors.js';
import { MAX_TEXT_FILE_BYTES, readTextFile, writeTextFile } from './text-file.js';

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

describe('readTextFile refuses what is no config file text', () => {
  it('a device (/dev/zero, /dev/urandom) without reading it: one UserError', () => {
    for (const device of ['/dev/zero', '/dev/urandom']) {
      expect(() => readTextFile(device)).toThrow(UserError);
      expect(() => readTextFile(device)).toThrow(`cannot read ${device}: not a regular file`);
    }
  });

  it('a file larger than the bound, after reading at most the bound', () => {
    const file = join(dir, 'big.yaml');
    writeFileSync(file, 'a: 1\n'.repeat(30));
    expect(readTextFile(file, 150)).toBe('a: 1\n'.repeat(30));
    expect(() => readTextFile(file, 149)).toThrow(`cannot read ${file}: larger than 149 bytes`);
    expect(MAX_TEXT_FILE_BYTES).toBeGreaterThanOrEqual(16 * 1024 * 1024);
  });

  it('a file that is not UTF-8 text, or holds a NUL byte; a BOM is kept', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(bad, Buffer.from([0x61, 0x3a, 0x20, 0xff, 0xfe, 0x0a]));
    expect(() => readTextFile(bad)).toThrow(`cannot read ${bad}: not UTF-8 text`);
    const nul = join(dir, 'nul.yaml');
    writeFileSync(nul, 'a: 1\n\0');
    expect(() => readTextFile(nul)).toThrow(`cannot read ${nul}: not a text file (a NUL byte at offset 5)`);
    const bom = join(dir, 'bom.yaml');
    writeFileSync(bom, '\uFEFFa: 1\n');
    expect(readTextFile(bom)).toBe('\uFEFFa: 1\n');
  });

  it('reads a pipe (-f /dev/stdin in a pipeline), bounded as a file is', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    // a writer on the other end, as a shell pipeline's previous command is
    const writer = spawn('sh', ['-c', `printf 'a: 1\\n' > "${fifo}"`]);
    expect(readTextFile(fifo)).toBe('a: 1\n');
    await new Promise((r) => writer.once('close', r));
  });
});
