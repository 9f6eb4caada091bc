/**
 * Where a bench tool writes its JSON: `<dir>/<date>-<sha><suffix>.json`, and for a later run of
 * the same commit on the same day `-2`, `-3`, … before the `.json` — a run never overwrites
 * another. Creates `dir`; returns the path it wrote.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export function writeResultFile(
  dir: string,
  { date, sha, suffix = '' }: { date: string; sha: string; suffix?: string },
  data: unknown,
): string {
  mkdirSync(dir, { recursive: true });
  const name = `${date.slice(0, 10)}-${sha}${suffix}`;
  let file = join(dir, `${name}.json`);
  for (let n = 2; existsSync(file); n++) file = join(dir, `${name}-${n}.json`);
  writeFileSync(file, `${JSON.stringify(data, null, 2)}\n`);
  return file;
}
