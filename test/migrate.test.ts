/**
 * `npm run migrate` against the stack's shards with one more shard in etcd whose master does not
 * answer (a shard a test or an operator left behind): every other shard is still migrated, the
 * failure is one line naming the shard, and `--shard` (what `npm run stack -- up` passes) leaves
 * the other shard out instead of failing. A master frozen (SIGSTOP) while migrate waits on it is
 * given up on after 10 s without an answer to a ping, and the next shard is still migrated.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { topology } from '../stack/topology.js';
import { etcdDel, etcdPut } from './helpers/etcd.js';
import { runMigrate, runMigrateAsync } from './helpers/migrate.js';
import { node, rootConnection } from './helpers/shard-db.js';
import { stackPid, waitFor } from './helpers/stack.js';

const stray = `mg-${randomBytes(3).toString('hex')}`;
const H = topology.host;

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
    const r = runMigrate([]);
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
    const r = runMigrate(topology.shards.flatMap((s) => ['--shard', s.id]));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const s of topology.shards) expect(r.stdout).toMatch(migratedLine(s.id));
    expect(r.stdout).toMatch(new RegExp(`^not named, not migrated: .*\\b${stray}\\b`, 'm'));
    expect(r.stdout).not.toMatch(new RegExp(`^shard ${stray} `, 'm'));
  }, 60_000);

  it('refuses a --shard that is not in etcd, naming it and the known ones, and migrates nothing', () => {
    const r = runMigrate(['--shard', 'shard-1', '--shard=shard-99']);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^migrate: unknown shard "shard-99" \(known: .*shard-1, shard-2.*\); nothing migrated\n$/,
    );
  }, 60_000);

  it('refuses an argument it does not know', () => {
    const r = runMigrate(['shard-1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^migrate: unknown argument "shard-1" \(usage: npm run migrate/);
  }, 60_000);
});

describe('npm run migrate with a master that freezes while it waits on it', () => {
  const master = node('shard-1', 'master');

  it('gives up on it after 10 s without an answer to a ping, names it, and migrates the next shard (exit 1)', async () => {
    // the migration lock held here, so migrate waits on shard-1's master in GET_LOCK when it freezes
    const holder = await rootConnection(master.port);
    const pid = stackPid(master.name)!;
    let frozen = false;
    try {
      const [got] = await holder.query<[]>({
        sql: "SELECT GET_LOCK('shardgate.migrate', 0)",
        rowsAsArray: true,
      });
      expect(Number((got as unknown[][])[0]?.[0])).toBe(1);
      const run = runMigrateAsync(topology.shards.flatMap((s) => ['--shard', s.id]));
      await waitFor(
        async () => {
          const [rows] = await holder.query<[]>(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE 'SELECT GET_LOCK(%' AND ID <> CONNECTION_ID()",
          );
          return rows.length > 0;
        },
        { timeoutMs: 30_000, intervalMs: 50, what: "migrate waiting for shard-1's migration lock" },
      );
      process.kill(pid, 'SIGSTOP');
      frozen = true;
      const started = Date.now();
      const r = await run;
      const tookMs = Date.now() - started;
      process.kill(pid, 'SIGCONT');
      frozen = false;
      // before: migrate waited on the frozen master for ever (killed here at 60 s, code -1)
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(
          `^migrate: shard shard-1 \\(${H}:${master.port}/shardgate\\): the master answered no ping for 10 s \\(frozen\\?\\), so this shard was given up on; a statement it was running may still complete .*before running migrate again$`,
          'm',
        ),
      );
      expect(r.stderr).toMatch(/^migrate: 1 of 2 shard\(s\) failed$/m);
      expect(r.stdout).toMatch(migratedLine('shard-2'));
      // 10 s of silence, a ping a second, then shard-2: a bound generous for a loaded box
      expect(tookMs).toBeLessThan(30_000);
    } finally {
      if (frozen) process.kill(pid, 'SIGCONT');
      await holder.end().catch(() => {});
    }
    // thawed, the master migrates again (its lock released with the holder's connection)
    const again = runMigrate(['--shard', 'shard-1']);
    expect([again.code, again.stderr]).toEqual([0, '']);
    expect(again.stdout).toMatch(migratedLine('shard-1'));
  }, 90_000);
});
