/**
 * The record of a dead `tenants move` whose tenant's entry goes by another way than `tenants
 * remove` (a review: it outlived the entry; `status` listed the move as interrupted while `tenants
 * show` answered "unknown tenant" and `tenants delete-rows` refused while it was there, so only
 * etcdctl could clear it). `config apply --prune` deletes it as `tenants remove` does; after an
 * `etcdctl del` of the entry, `tenants show` names it and `tenants remove --yes` clears it. Under
 * a prefix of its own; the record is written as a move killed mid-copy leaves it.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { statusCommand } from '../control-plane/commands/status.js';
import { type CtlContext, createCtlContext } from '../control-plane/ctl-context.js';
import { deleteMoveRecord, moveLockKey, moveRecordKey } from '../control-plane/move-record.js';
import { removalRecordKey } from '../control-plane/removal-record.js';
import { dbPassword } from '../stack/stack-env.js';
import { ctl } from './helpers/ctl.js';
import { etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';

const PREFIX = `/ml-${randomBytes(4).toString('hex')}/`;
const env = { SHARDGATE_ETCD_PREFIX: PREFIX };
const dir = mkdtempSync(join(tmpdir(), 'sg-move-left-'));
const SHARD = (port: number) =>
  JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [], database: 'shardgate' });
const written = new Set<string>();
const put = (key: string, value: string) => {
  written.add(key);
  etcdPutKey(key, value);
};

put(`${PREFIX}shards/ml-a`, SHARD(3316));
put(`${PREFIX}shards/ml-b`, SHARD(3326));

/** a tenant on ml-a with the record of a move to ml-b that died (no lock held) */
function tenantWithDeadMove(id: string): string {
  put(`${PREFIX}tenants/${id}`, JSON.stringify({ shard: 'ml-a', status: 'readonly' }));
  const key = moveRecordKey(PREFIX, id);
  put(
    key,
    JSON.stringify({
      from: 'ml-a',
      to: 'ml-b',
      status: 'active',
      keepSource: false,
      startedAt: new Date().toISOString(),
    }),
  );
  for (const shard of ['ml-a', 'ml-b']) written.add(removalRecordKey(PREFIX, id, shard));
  return key;
}

/** `config apply --prune --force` of a file holding the two shards and no tenant */
function pruneAllTenants(name: string) {
  const file = join(dir, name);
  writeFileSync(
    file,
    'shards:\n' +
      '  ml-a: {master: {host: 127.0.0.1, port: 3316}, replicas: [], database: shardgate}\n' +
      '  ml-b: {master: {host: 127.0.0.1, port: 3326}, replicas: [], database: shardgate}\n',
  );
  const r = ctl(['config', 'apply', '-f', file, '--prune', '--force'], env);
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** both shards of the move hold a removal record of the id, rows unchecked */
function expectRecordedOnBoth(id: string): void {
  for (const shard of ['ml-a', 'ml-b'])
    expect(JSON.parse(etcdGetKey(removalRecordKey(PREFIX, id, shard))!)).toMatchObject({ rows: 'unchecked' });
}

/** a CtlContext of this process under PREFIX */
function prefixedContext(): CtlContext {
  const saved = process.env.SHARDGATE_ETCD_PREFIX;
  process.env.SHARDGATE_ETCD_PREFIX = PREFIX;
  try {
    return createCtlContext();
  } finally {
    if (saved === undefined) delete process.env.SHARDGATE_ETCD_PREFIX;
    else process.env.SHARDGATE_ETCD_PREFIX = saved;
  }
}

afterAll(() => {
  for (const key of written) etcdDelKey(key);
});

describe('the record of a dead move whose tenant entry goes another way than tenants remove', () => {
  it('config apply --prune deletes it with the entry, recording both shards as holding rows of the id', () => {
    const key = tenantWithDeadMove('ml-pruned');
    const r = pruneAllTenants('prune.yaml');
    expect(r.stdout).toContain(
      'tenant ml-pruned: the record of its interrupted move from shard ml-a to ml-b was deleted',
    );
    expect(etcdGetKey(key)).toBeUndefined();
    expectRecordedOnBoth('ml-pruned');
    // the move is no longer listed as interrupted
    const status = ctl(['status', '--json'], env);
    expect(JSON.parse(status.stdout).moves ?? []).toEqual([]);
  });

  it('config apply --prune of a tenant whose move runs deletes that record too, as tenants remove does', () => {
    // a second review: kept for the running move, the record let a readonly tenant's move past
    // its switch void the target's removal record of the tenant the file had removed
    const key = tenantWithDeadMove('ml-running');
    // the move's lock, as a running move holds it
    put(moveLockKey(PREFIX, 'ml-running'), 'held');
    const r = pruneAllTenants('prune-running.yaml');
    expect(r.stdout).toContain(
      'tenant ml-running: the record of its running move (it stops at its next step) from shard ml-a to ml-b was deleted',
    );
    expect(etcdGetKey(key)).toBeUndefined();
    expectRecordedOnBoth('ml-running');
  });

  it('a guarded delete of a move record tells a record deleted meanwhile from one rewritten', async () => {
    // a review: etcd fails a compare on a missing key, and a record already gone was reported as
    // "rewritten by another command ... and stays"
    const ctx = prefixedContext();
    try {
      const ours = {
        from: 'ml-a',
        to: 'ml-b',
        status: 'active' as const,
        keepSource: false,
        startedAt: '2026-01-01T00:00:00.000Z',
      };
      const key = moveRecordKey(PREFIX, 'ml-guarded');
      written.add(key);
      expect(await deleteMoveRecord(ctx, 'ml-guarded', ours)).toBe('absent');
      etcdPutKey(key, JSON.stringify({ ...ours, startedAt: '2026-02-02T00:00:00.000Z' }));
      expect(await deleteMoveRecord(ctx, 'ml-guarded', ours)).toBe('rewritten');
      expect(etcdGetKey(key)).toBeDefined();
      etcdPutKey(key, JSON.stringify(ours));
      expect(await deleteMoveRecord(ctx, 'ml-guarded', ours)).toBe('deleted');
      expect(etcdGetKey(key)).toBeUndefined();
    } finally {
      ctx.close();
    }
  });

  it('an entry deleted with etcdctl: tenants show names the record, tenants remove --yes clears it', () => {
    const key = tenantWithDeadMove('ml-deleted');
    etcdDelKey(`${PREFIX}tenants/ml-deleted`);
    const shown = ctl(['tenants', 'show', 'ml-deleted'], env);
    expect(shown.code).toBe(1);
    expect(shown.stderr).toContain(
      'tenant ml-deleted has no entry, but the record of its interrupted move from shard ml-a to ml-b',
    );
    expect(shown.stderr).toContain('`tenants remove ml-deleted --yes` deletes the record');
    const asked = ctl(['tenants', 'remove', 'ml-deleted'], env);
    expect(asked.code).toBe(1);
    expect(asked.stderr).toContain('re-run with --yes');
    expect(etcdGetKey(key)).toBeDefined();
    const removed = ctl(['tenants', 'remove', 'ml-deleted', '--yes'], env);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toContain('tenant ml-deleted has no entry; the record of its interrupted move');
    expect(etcdGetKey(key)).toBeUndefined();
    expectRecordedOnBoth('ml-deleted');
    // nothing left: an unknown tenant again, and delete-rows is no longer refused for a record
    expect(ctl(['tenants', 'show', 'ml-deleted'], env).stderr).toContain(
      'tenants show: unknown tenant ml-deleted (see',
    );
    const rows = ctl(['tenants', 'delete-rows', 'ml-deleted', '--shard', 'ml-b', '--yes'], {
      ...env,
      SHARDGATE_DB_PASSWORD: dbPassword(),
    });
    expect(rows.code, rows.stderr).toBe(0);
  });

  it('status says the move records are unknown when it cannot read them, and lists the rest', async () => {
    // one unreadable range (a role without access to the records) failed the whole command
    const ctx = prefixedContext();
    const out: string[] = [];
    ctx.out = (line) => out.push(line);
    const getAll = ctx.etcd.getAll.bind(ctx.etcd);
    ctx.etcd.getAll = () => {
      const builder = getAll();
      const prefix = builder.prefix.bind(builder);
      builder.prefix = (p: string | Buffer) => {
        if (String(p).endsWith('.moves/'))
          builder.keys = () => Promise.reject(new Error('etcdserver: permission denied'));
        return prefix(p);
      };
      return builder;
    };
    try {
      await statusCommand(ctx, {});
    } finally {
      ctx.close();
    }
    expect(out.join('\n')).toContain('moves: unknown (the move records could not be read: ');
    expect(out.join('\n')).toMatch(/^tenants: \d+/m);
  });
});
