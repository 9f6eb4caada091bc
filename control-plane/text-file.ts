/**
 * The files the CLI reads and writes (`config apply -f`, `config export -o`). Any failure is a
 * UserError naming the file and the reason in words (no such file, a missing directory, a
 * directory given as file, no permission), never a stack trace.
 */
import { closeSync, fstatSync, openSync, readSync, statSync, writeFileSync } from 'node:fs';
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

/**
 * The largest file `readTextFile` reads: an export of 5,000 tenants weighs about 250 KB, so 16 MiB
 * leaves ample room, and a larger file is no config (a wrong path, a log, a device).
 */
export const MAX_TEXT_FILE_BYTES = 16 * 1024 * 1024;

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * The text of `file`: a regular file or a pipe (`-f /dev/stdin` at the end of a pipeline) of at
 * most `maxBytes` bytes that is UTF-8 text. A device (`/dev/zero`, `/dev/urandom`, a terminal) or
 * a socket is refused before it is read; more than `maxBytes` is refused after at most
 * `maxBytes + 1` bytes are read (a file may grow meanwhile, a pipe may be endless), and text that
 * is not valid UTF-8 or holds a NUL byte (binary) is refused too, each with one UserError. A BOM
 * is kept, as the caller expects it.
 */
export function readTextFile(file: string, maxBytes = MAX_TEXT_FILE_BYTES): string {
  const refuse = (why: string) => new UserError(`cannot read ${file}: ${why}`);
  let bytes: Buffer;
  try {
    // stat first: what is neither a file nor a pipe is refused before it is opened
    const stat = statSync(file);
    if (stat.isDirectory()) throw refuse('it is a directory');
    const readable = (st: { isFile(): boolean; isFIFO(): boolean }) => st.isFile() || st.isFIFO();
    if (!readable(stat)) throw refuse('not a regular file or a pipe (a device or a socket)');
    const fd = openSync(file, 'r');
    try {
      if (!readable(fstatSync(fd))) throw refuse('not a regular file or a pipe (a device or a socket)');
      const buffer = Buffer.allocUnsafe(maxBytes + 1);
      let length = 0;
      for (;;) {
        const n = readSync(fd, buffer, length, buffer.length - length, null);
        if (n === 0) break;
        length += n;
        if (length > maxBytes) throw refuse(`larger than ${maxBytes} bytes, too large for a config file`);
      }
      bytes = buffer.subarray(0, length);
    } finally {
      closeSync(fd);
    }
  } catch (error) {
    if (error instanceof UserError) throw error;
    throw refuse(reason(error, file, false));
  }
  let text: string;
  try {
    text = UTF8.decode(bytes);
  } catch {
    throw refuse('not UTF-8 text');
  }
  const nul = text.indexOf('\0');
  if (nul >= 0)
    throw refuse(`not a text file (a NUL byte at offset ${Buffer.byteLength(text.slice(0, nul))})`);
  return text;
}

export function writeTextFile(file: string, text: string): void {
  try {
    writeFileSync(file, text);
  } catch (error) {
    throw new UserError(`cannot write ${file}: ${reason(error, file, true)}`);
  }
}
