import { execFile } from 'node:child_process';
import {
  appendFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseEnv } from '../src/env.js';
import { stackEnv, stackSecrets } from './stack-env.js';

describe('stack environment', () => {
  beforeEach(() => {
    // set, so stackEnv() reads them instead of generating a secret into .stack/
    vi.stubEnv('SHARDGATE_JWT_SECRET', 'x'.repeat(32));
    vi.stubEnv('SHARDGATE_DB_PASSWORD', 'p');
  });
  afterEach(() => vi.unstubAllEnvs());

  it("gives every process the addresses src/env.ts defaults to (the env schema's defaults are the topology's)", () => {
    // src/ may not import stack/topology.ts (runtime-neutral), so its defaults repeat the
    // topology's ports; this keeps the two the same
    const defaults = parseEnv({});
    const stack = parseEnv(stackEnv());
    for (const name of [
      'SHARDGATE_LISTEN_HOST',
      'SHARDGATE_ETCD_ENDPOINTS',
      'SHARDGATE_ETCD_PREFIX',
      'SHARDGATE_REDIS_URL',
      'SHARDGATE_AMQP_URL',
      'SHARDGATE_SMTP_URL',
      'SHARDGATE_DB_USER',
    ] as const) {
      expect(stack[name], name).toEqual(defaults[name]);
    }
  });
});

describe('the stack secrets file', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stack-secrets-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('generates every secret once, owner-only, and reads the same ones back', () => {
    const file = join(dir, 'nested', 'secrets.env');
    const first = stackSecrets(file);
    expect(Object.keys(first).sort()).toEqual(['SHARDGATE_JWT_SECRET', 'STACK_REPL_PASSWORD']);
    for (const value of Object.values(first)) expect(value).toMatch(/^[A-Za-z0-9_-]{24,}$/);
    expect(new Set(Object.values(first)).size).toBe(2);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(stackSecrets(file)).toEqual(first);
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it("keeps what an older stack's file holds and adds only the missing ones", () => {
    const file = join(dir, 'secrets.env');
    writeFileSync(file, 'SHARDGATE_JWT_SECRET=from-before\n', { mode: 0o600 });
    const secrets = stackSecrets(file);
    expect(secrets.SHARDGATE_JWT_SECRET).toBe('from-before');
    expect(secrets.STACK_REPL_PASSWORD).toMatch(/^[A-Za-z0-9_-]{24}$/);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines[0]).toBe('SHARDGATE_JWT_SECRET=from-before');
    expect(lines).toHaveLength(2);
  });

  it('takes the first line of a name, so two processes that both appended agree', () => {
    const file = join(dir, 'secrets.env');
    stackSecrets(file);
    const before = stackSecrets(file).STACK_REPL_PASSWORD;
    appendFileSync(file, 'STACK_REPL_PASSWORD=appended-later\n');
    expect(stackSecrets(file).STACK_REPL_PASSWORD).toBe(before);
  });

  it('adds a missing one on a line of its own after a last line without its newline', () => {
    const file = join(dir, 'secrets.env');
    writeFileSync(file, 'SHARDGATE_JWT_SECRET=typed-by-hand', { mode: 0o600 });
    const secrets = stackSecrets(file);
    expect(secrets.SHARDGATE_JWT_SECRET).toBe('typed-by-hand');
    expect(readFileSync(file, 'utf8')).toMatch(
      /^SHARDGATE_JWT_SECRET=typed-by-hand\nSTACK_REPL_PASSWORD=[\w-]{24}\n$/,
    );
  });

  it('takes over a lock left by a process that died holding it', () => {
    const file = join(dir, 'secrets.env');
    writeFileSync(`${file}.lock`, '');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${file}.lock`, old, old);
    expect(Object.keys(stackSecrets(file))).toHaveLength(2);
    expect(() => statSync(`${file}.lock`)).toThrow(/ENOENT/);
  });

  it('takes over at once a lock naming a process that is gone', async () => {
    const file = join(dir, 'secrets.env');
    const gone = await promisify(execFile)(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]);
    writeFileSync(`${file}.lock`, gone.stdout);
    const started = Date.now();
    expect(Object.keys(stackSecrets(file))).toHaveLength(2);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('waits for a process holding the lock, then takes what that process wrote', async () => {
    const file = join(dir, 'secrets.env');
    const lock = `${file}.lock`;
    writeFileSync(lock, String(process.pid)); // another process, alive, is writing the file
    const script = `import { stackSecrets } from ${JSON.stringify(new URL('./stack-env.ts', import.meta.url).pathname)};
      process.stdout.write(JSON.stringify(stackSecrets(${JSON.stringify(file)})));`;
    const child = promisify(execFile)(process.execPath, [
      '--import',
      'tsx',
      '--input-type=module',
      '-e',
      script,
    ]);
    await new Promise((r) => setTimeout(r, 1500));
    // what the holder wrote, then its release
    writeFileSync(file, 'SHARDGATE_JWT_SECRET=holder-jwt\nSTACK_REPL_PASSWORD=holder-repl\n', {
      mode: 0o600,
    });
    rmSync(lock);
    const { stdout } = await child;
    expect(JSON.parse(stdout)).toEqual({
      SHARDGATE_JWT_SECRET: 'holder-jwt',
      STACK_REPL_PASSWORD: 'holder-repl',
    });
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  }, 30_000);
});
