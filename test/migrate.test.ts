/**
 * `npm run migrate` against the stack's shards with one more shard in etcd whose master does not
 * answer (a shard a test or an operator left behind): every other shard is still migrated, the
 * failure is one line naming the shard, and `--shard` (what `npm run stack -- up` passes) leaves
 * the other shard out instead of failing.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { REPO_ROOT } from '../stack/paths.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { etcdDel, etcdPut } from './helpers/etcd.js';

const stray = `mg-${randomBytes(3).toString('hex')}`;
const H = topology.host;

function migrate(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts', ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...stackEnv() },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** "shard shard-1 (127.0.0.1:3316/shardgate): 0 applied, 7 in total" */
const migratedLine = (id: string) => new RegExp(`^shard ${id} \\(.+\\): \\d+ applied, \\d+ in total$`, 'm');

describe('npm run migrate with a shard whose master does not answer', () => {
  let port: number;
  beforeAll(async () => {
    port = await freePort(H); // nothing listens there
    const value = { master: { host: H, port }, replicas: [], database: 'shardgate' };
    etcdPut(`shards/${stray}`, JSON.stringify(value));
  });
  afterAll(() => etcdDel(`shards/${stray}`));

  it('migrates every other shard, names the one that failed and exits 1', () => {
    const r = migrate([]);
    expect(r.code, r.stderr).toBe(1);
    // the stray sorts before shard-1: the shards after its failure were still migrated
    for (const s of topology.shards) expect(r.stdout).toMatch(migratedLine(s.id));
    expect(r.stderr).toMatch(
      new RegExp(
        `^migrate: shard ${stray} \\(${H}:${port}/shardgate\\): cannot connect: .*ECONNREFUSED`,
        'm',
      ),
    );
    expect(r.stderr).toMatch(/^migrate: [1-9]\d* of \d+ shard\(s\) failed$/m);
  }, 60_000);

  it('with --shard migrates the shards named and lists the others as not migrated (exit 0)', () => {
    const r = migrate(topology.shards.flatMap((s) => ['--shard', s.id]));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const s of topology.shards) expect(r.stdout).toMatch(migratedLine(s.id));
    expect(r.stdout).toMatch(new RegExp(`^not named, not migrated: .*\\b${stray}\\b`, 'm'));
    expect(r.stdout).not.toMatch(new RegExp(`^shard ${stray} `, 'm'));
  }, 60_000);

  it('refuses a --shard that is not in etcd, naming it and the known ones, and migrates nothing', () => {
    const r = migrate(['--shard', 'shard-1', '--shard=shard-99']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^migrate: unknown shard "shard-99" \(known: .*shard-1, shard-2.*\); nothing migrated\n$/,
    );
  }, 60_000);

  it('refuses an argument it does not know', () => {
    const r = migrate(['shard-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^migrate: unknown argument "shard-1" \(usage: npm run migrate/);
  }, 60_000);
});
