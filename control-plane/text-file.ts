/**
 * The files the CLI reads and writes (`config apply -f`, `config export -o`). Any failure is a
 * UserError naming the file and the reason in words (no such file, a missing directory, a
 * directory given as file, no permission), never a stack trace.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from './ctl-errors.js';

function reason(error: unknown, file: string, writing: boolean): string {
  const e = error as NodeJS.ErrnoException;
  switch (e.code) {
    case 'ENOENT':
      return writing ? `directory ${dirname(file)} does not exist` : 'no such file';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a part of its path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    default:
      // node's message also names the syscall and the path, which the line already has
      return (e.message ?? String(error)).replace(/,\s*\w+\s+'.*'$/, '');
  }
}

export function readTextFile(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read ${file}: ${reason(error, file, false)}`);
  }
}

export function writeTextFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    throw new UserError(`cannot write ${file}: ${reason(error, file, true)}`);
  }
}
