import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DOCKER_SECRETS, describeDockerSecrets, parseEnvFile, writeDockerSecrets } from './docker-secrets.js';

const ALL = Object.keys(DOCKER_SECRETS).sort();

let dir: string;
let file: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'shardgate-secrets-'));
  file = join(dir, '.env');
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** the NAME=value lines of `file`, each name with every value it has */
function values(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of text.matchAll(/^(?:export\s+)?([A-Z_][A-Z0-9_]*)=(.*?)\r?$/gm))
    out.set(m[1]!, [...(out.get(m[1]!) ?? []), m[2]!]);
  return out;
}

describe('parseEnvFile', () => {
  it('reads NAME=value lines, skipping blank lines, comments and empty values', () => {
    const m = parseEnvFile('# a comment\n\nA=1\nB=\n  C = three  \n#D=4\n');
    expect([...m]).toEqual([
      ['A', '1'],
      ['C', 'three'],
    ]);
  });

  it('reads a file with CRLF line ends', () => {
    const m = parseEnvFile('# secrets\r\nA=abc\r\nB=def\r\n');
    expect([...m]).toEqual([
      ['A', 'abc'],
      ['B', 'def'],
    ]);
  });

  it('reads `export NAME=value`, quoted values and an unquoted value followed by a comment', () => {
    const m = parseEnvFile(
      'export A=1\nexport  B="two words"\nC=\'single # not a comment\'\nD=four # a comment\nE=""\nexportF=6\n',
    );
    expect([...m]).toEqual([
      ['A', '1'],
      ['B', 'two words'],
      ['C', 'single # not a comment'],
      ['D', 'four'],
      ['exportF', '6'],
    ]);
  });
});

describe('writeDockerSecrets', () => {
  it('generates every secret once into a new file (mode 600), and changes nothing on a second run', () => {
    const first = writeDockerSecrets(file, {});
    expect(first.created.sort()).toEqual(ALL);
    expect(first).toMatchObject({ kept: [], fromEnvironment: [] });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const text = readFileSync(file, 'utf8');
    const second = writeDockerSecrets(file, {});
    expect(second).toMatchObject({ created: [], fromEnvironment: [] });
    expect(second.kept.sort()).toEqual(ALL);
    expect(readFileSync(file, 'utf8')).toBe(text);
  });

  it('keeps the secrets of a CRLF file: none generated again, none doubled', () => {
    writeDockerSecrets(file, {});
    const crlf = readFileSync(file, 'utf8').replace(/\n/g, '\r\n');
    writeFileSync(file, crlf);
    const r = writeDockerSecrets(file, {});
    expect(r.created).toEqual([]);
    expect(r.kept.sort()).toEqual(ALL);
    expect(readFileSync(file, 'utf8')).toBe(crlf);
  });

  it('appends a missing secret to a CRLF file with CRLF, keeping the others', () => {
    writeFileSync(
      file,
      '# mine\r\nSHARDGATE_JWT_SECRET=jwt-from-before\r\nMARIADB_ROOT_PASSWORD=root-from-before',
    );
    const r = writeDockerSecrets(file, {});
    expect(r.kept.sort()).toEqual(['MARIADB_ROOT_PASSWORD', 'SHARDGATE_JWT_SECRET']);
    expect(r.created.sort()).toEqual([
      'REPL_PASSWORD',
      'SHARDGATE_DB_PASSWORD',
      'SHARDGATE_RABBITMQ_PASSWORD',
    ]);
    const text = readFileSync(file, 'utf8');
    expect(text).not.toMatch(/[^\r]\n/);
    const v = values(text);
    expect(v.get('SHARDGATE_JWT_SECRET')).toEqual(['jwt-from-before']);
    expect(v.get('MARIADB_ROOT_PASSWORD')).toEqual(['root-from-before']);
    for (const name of r.created) expect(v.get(name)).toHaveLength(1);
  });

  it('keeps `export NAME=value` and quoted values: no second value for them', () => {
    writeFileSync(
      file,
      'export SHARDGATE_DB_PASSWORD=db-from-before\nREPL_PASSWORD="repl from before"\nMARIADB_ROOT_PASSWORD=\'root\'\n',
    );
    const r = writeDockerSecrets(file, {});
    expect(r.kept.sort()).toEqual(['MARIADB_ROOT_PASSWORD', 'REPL_PASSWORD', 'SHARDGATE_DB_PASSWORD']);
    expect(r.created.sort()).toEqual(['SHARDGATE_JWT_SECRET', 'SHARDGATE_RABBITMQ_PASSWORD']);
    const v = values(readFileSync(file, 'utf8'));
    expect(v.get('SHARDGATE_DB_PASSWORD')).toEqual(['db-from-before']);
    expect(v.get('REPL_PASSWORD')).toEqual(['"repl from before"']);
    expect(v.get('SHARDGATE_JWT_SECRET')).toHaveLength(1);
  });

  it('adds the RabbitMQ password to a file written before it existed, and changes nothing else', () => {
    const before =
      '# secrets of docker/compose.yml (npm run stack -- docker-secrets); never commit\n' +
      'SHARDGATE_JWT_SECRET=jwt-before\nSHARDGATE_DB_PASSWORD=db-before\n' +
      'MARIADB_ROOT_PASSWORD=root-before\nREPL_PASSWORD=repl-before\n';
    writeFileSync(file, before);
    const r = writeDockerSecrets(file, {});
    expect(r.created).toEqual(['SHARDGATE_RABBITMQ_PASSWORD']);
    expect(r.kept.sort()).toEqual(ALL.filter((n) => n !== 'SHARDGATE_RABBITMQ_PASSWORD'));
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith(before)).toBe(true);
    // 24 random bytes in base64url: safe inside the AMQP URL compose builds from it
    expect(values(text).get('SHARDGATE_RABBITMQ_PASSWORD')).toEqual([
      expect.stringMatching(/^[A-Za-z0-9_-]{32}$/),
    ]);
  });

  it('writes no secret that the environment sets (compose prefers it), and says so', () => {
    const r = writeDockerSecrets(file, { SHARDGATE_DB_PASSWORD: 'from-the-shell', REPL_PASSWORD: '' });
    expect(r.fromEnvironment).toEqual(['SHARDGATE_DB_PASSWORD']);
    expect(r.kept).toEqual(['SHARDGATE_DB_PASSWORD']);
    expect(r.created.sort()).toEqual(ALL.filter((n) => n !== 'SHARDGATE_DB_PASSWORD'));
    const text = readFileSync(file, 'utf8');
    expect(values(text).has('SHARDGATE_DB_PASSWORD')).toBe(false);
    expect(text).not.toContain('from-the-shell');
    expect(describeDockerSecrets(file, r)).toBe(
      `wrote ${file} (mode 600): generated ${r.created.join(', ')}; kept from the environment (not written): SHARDGATE_DB_PASSWORD`,
    );
    // a value in the file wins over generating, and is reported as kept in the file
    const again = writeDockerSecrets(file, { SHARDGATE_JWT_SECRET: 'also-in-the-shell' });
    expect(again.kept).toContain('SHARDGATE_JWT_SECRET');
    expect(again.fromEnvironment).toEqual([]);
    expect(again.created).toEqual(['SHARDGATE_DB_PASSWORD']);
  });
});
