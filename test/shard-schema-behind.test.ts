/**
 * An instance whose shard's schema is behind its build (a rolling upgrade that skipped `npm run
 * migrate`): it says so (`shardgate_shard_schema_migrations_pending{shard}`) and a write that needs
 * a newer column answers 503 `dependency_unavailable` (retryable), not a bare 500; what the old
 * schema allows still works; after the migration the write is served. Before, registrations,
 * loans and every write with an `Idempotency-Key` answered 500 and nothing named the cause (an
 * outside check).
 *
 * A database of this test's own on shard-1's master, migrated with a copy of migrations/ cut
 * before 0007 (7 of the build's migrations), added as a shard; one extra API instance runs from
 * source beside the stack. Dropped and removed at the end.
 */
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { drizzle } from 'drizzle-orm/mysql2';
import { migrate } from 'drizzle-orm/mysql2/migrator';
import { type Connection, createConnection } from 'mysql2/promise';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { findMigrationsFolder, migrationCount } from '../src/db/migrations-folder.js';
import { stackEnv } from '../stack/stack-env.js';
import { topology } from '../stack/topology.js';
import { api, registerAndLogin } from './helpers/api.js';
import { ctl } from './helpers/ctl.js';
import { etcdDel } from './helpers/etcd.js';
import { runMigrate } from './helpers/migrate.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const suffix = randomBytes(3).toString('hex');
const shard = `behind-${suffix}`;
const database = `behind_${suffix}`;
const tenant = uniqueTenantId('behind');
const H = topology.host;
const masterPort = topology.shards[0]!.master.port;
const dir = mkdtempSync(join(tmpdir(), 'shardgate-behind-'));
const folder = findMigrationsFolder()!;
const inBuild = migrationCount(folder)!;
const CUT = 7;
/** migrations/ as the release before 0007 had it */
const before = join(dir, 'migrations');
let root: Connection;
let base = '';

/** migrates the test's database with `migrationsFolder` */
async function migrateWith(migrationsFolder: string): Promise<void> {
  const db = await createConnection({ host: H, port: masterPort, user: 'root', database });
  try {
    await migrate(drizzle(db), { migrationsFolder });
  } finally {
    await db.end();
  }
}

beforeAll(async () => {
  expect(inBuild).toBeGreaterThan(CUT);
  // the folder as the release before 0007 had it
  cpSync(folder, before, { recursive: true });
  const journalPath = join(before, 'meta', '_journal.json');
  const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { entries: { idx: number }[] };
  journal.entries = journal.entries.filter((e) => e.idx < CUT);
  writeFileSync(journalPath, JSON.stringify(journal));
  root = await createConnection({ host: H, port: masterPort, user: 'root' });
  await root.query(`CREATE DATABASE \`${database}\``);
  for (const host of [H, 'localhost'])
    await root.query(`GRANT ALL ON \`${database}\`.* TO ?@?`, [topology.dbUser, host]);
  await migrateWith(before);
  const added = ctl(
    ['shards', 'add', shard, '--master', `${H}:${masterPort}`, '--database', database],
    stackEnv(),
  );
  expect(added.stdout).toContain(`(${CUT} of this build's ${inBuild} migrations applied there)`);
  const created = ctl(['tenants', 'create', tenant, '--shard', shard], stackEnv());
  expect(created.code, created.stderr).toBe(0);
  const port = await freePort('127.0.0.1');
  const instance = startEntry('src/entry/node.ts', {
    ...stackEnv(),
    SHARDGATE_INSTANCE_ID: `behind-${port}`,
    SHARDGATE_LISTEN_HOST: '127.0.0.1',
    PORT: String(port),
    SHARDGATE_AGENT_PORT: String(await freePort('127.0.0.1')),
    SHARDGATE_DRAIN_MS: '0',
  });
  base = `http://127.0.0.1:${port}`;
  await waitFor(
    async () => {
      if (instance.child.exitCode !== null) throw new Error(`exited: ${instance.stderr()}`);
      return (await api('GET', '/v1/books', { tenant, base }).catch(() => undefined))?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 200, what: 'the instance ready, the tenant known to it' },
  );
}, 90_000);

afterAll(async () => {
  stopStartedEntries();
  etcdDel(`tenants/${tenant}`);
  ctl(['shards', 'remove', shard, '--force'], stackEnv());
  etcdDel(`shards/${shard}`);
  await root?.query(`DROP DATABASE IF EXISTS \`${database}\``);
  await root?.end();
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe("a shard whose schema is behind the instance's build", () => {
  it('is named in a gauge; a write needing a newer column answers 503, not 500; a migrate that fails names the migration; after migrate, 201', async () => {
    const pending = new RegExp(
      `\\nshardgate_shard_schema_migrations_pending\\{[^}]*shard="${shard}"[^}]*\\} (-?\\d+)`,
    );
    await waitFor(async () => pending.test(await (await fetch(`${base}/metrics`)).text()), {
      timeoutMs: 10_000,
      what: 'the schema gauge of the shard',
    });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(pending.exec(metrics)?.[1]).toBe(String(inBuild - CUT));
    // registering writes the welcome mail to the outbox, whose 0007 column this schema lacks
    const register = (email: string) =>
      api('POST', '/v1/members', {
        tenant,
        base,
        body: { email, name: 'Behind', password: 'correct horse battery' },
      });
    const refused = await register('a@example.com');
    expect([refused.status, refused.json?.code]).toEqual([503, 'dependency_unavailable']);
    expect(refused.headers.get('retry-after')).toBe('30');
    // the answer of a node that is up: its breaker counts no failure
    const breakers = (await api('GET', '/health/circuit-breakers', { base })).json.breakers;
    const own = breakers.find((b: { name: string }) => b.name === `mysql-master:${shard}`);
    expect([own?.state, own?.failures]).toEqual(['closed', 0]);
    // 0007's first statement run by hand (as an interrupted migrate leaves it): migrate fails on
    // it again, its line naming the migration to look at and the docs' repair
    await root.query(`ALTER TABLE \`${database}\`.outbox ADD dead_lettered_at datetime(3)`);
    const failed = runMigrate(['--shard', shard]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(
      `migrate: shard ${shard} (${H}:${masterPort}/${database}): Duplicate column name 'dead_lettered_at' (the first migration not recorded there: 0007_outbox_dead_lettered_at; if its statements ran in part, an interrupted run or one run by hand, see docs/operations.md, "A migration that failed part-way")\n`,
    );
    await root.query(`ALTER TABLE \`${database}\`.outbox DROP COLUMN dead_lettered_at`);
    await migrateWith(folder);
    const { token } = await registerAndLogin(tenant, 'after@example.com', { base });
    expect(token).toBeTruthy();
    // the older build's migrate against it (a rollback): nothing applied, and said
    process.env.SHARDGATE_MIGRATIONS_DIR = before;
    try {
      const older = runMigrate(['--shard', shard]);
      expect(older.stdout).toContain(
        `shard ${shard} (${H}:${masterPort}/${database}): 0 applied, ${inBuild} in total (${inBuild - CUT} more than this build knows: a newer build migrated it)\n`,
      );
    } finally {
      delete process.env.SHARDGATE_MIGRATIONS_DIR;
    }
  }, 60_000);
});
