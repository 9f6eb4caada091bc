/**
 * `config apply` when etcd changes between its read and its commit, against the stack's etcd:
 * the command runs in this process (applyCommand with a real CtlContext) so that another writer's
 * put can land exactly there, before a chosen transaction. A commit refused for a change in between
 * (another tenant's, a key of the file's, a tenant --prune must delete) is read again and the file
 * planned anew (a re-run's outcome, printed once); a prefix that changes
 * before every attempt refuses it after WRITE_ATTEMPTS, nothing written. Each case under a prefix
 * of its own.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { applyCommand } from '../control-plane/commands/config.js';
import { type CtlContext, createCtlContext } from '../control-plane/ctl-context.js';
import { ConcurrentChangeError } from '../control-plane/ctl-errors.js';
import { removalRecordKey } from '../control-plane/removal-record.js';
import { WRITE_ATTEMPTS } from '../control-plane/write-keys.js';
import { etcdDelKey, etcdGetKey, etcdPutKey } from './helpers/etcd.js';

const dir = mkdtempSync(join(tmpdir(), 'sg-apply-retry-'));
const SHARD = JSON.stringify({
  master: { host: '127.0.0.1', port: 3316 },
  replicas: [],
  database: 'shardgate',
});
const TENANT = (name: string) => JSON.stringify({ shard: 'ar-s1', status: 'active', name });

/** full keys written by a case, deleted after it */
const written = new Set<string>();
const contexts: CtlContext[] = [];
afterEach(() => {
  for (const key of written) etcdDelKey(key);
  written.clear();
  for (const ctx of contexts.splice(0)) ctx.close();
});

interface Run {
  ctx: CtlContext;
  prefix: string;
  out: string[];
  warnings: string[];
  /** the guarded transactions the command sent */
  txns: number;
}

/**
 * A context under a new prefix holding shard `ar-s1`, whose etcd runs `before(n)` (someone
 * else's write) right before the command's n-th transaction.
 */
function run(before: (n: number, prefix: string) => void): Run {
  const prefix = `/ar-${randomBytes(4).toString('hex')}/`;
  put(prefix, 'shards/ar-s1', SHARD);
  const saved = process.env.SHARDGATE_ETCD_PREFIX;
  process.env.SHARDGATE_ETCD_PREFIX = prefix;
  let ctx: CtlContext;
  try {
    ctx = createCtlContext();
  } finally {
    if (saved === undefined) delete process.env.SHARDGATE_ETCD_PREFIX;
    else process.env.SHARDGATE_ETCD_PREFIX = saved;
  }
  contexts.push(ctx);
  const r: Run = { ctx, prefix, out: [], warnings: [], txns: 0 };
  ctx.out = (line) => r.out.push(line);
  ctx.warn = (line) => r.warnings.push(line);
  const txn = ctx.etcd.kv.txn.bind(ctx.etcd.kv);
  ctx.etcd.kv.txn = (...args: Parameters<typeof txn>) => {
    before(++r.txns, prefix);
    return txn(...args);
  };
  return r;
}

function put(prefix: string, key: string, value: string): void {
  written.add(prefix + key);
  etcdPutKey(prefix + key, value);
}

function file(text: string): string {
  const path = join(dir, `${randomBytes(4).toString('hex')}.yaml`);
  writeFileSync(path, text);
  return path;
}

const NO_REVISION = /names no export revision/;
const REPOINTED = /tenant ar-a is pointed from shard ar-s1 to shard ar-s2/;

describe('config apply while etcd changes between its read and its commit', () => {
  it('a file of tenant entries: another tenant created meanwhile refuses the first commit, and the next read applies the file', async () => {
    const r = run((n, prefix) => {
      if (n === 1) put(prefix, 'tenants/ar-other', TENANT('Other'));
    });
    const path = file('tenants:\n  ar-a: {shard: ar-s1, status: active, name: A}\n');
    await applyCommand(r.ctx, { file: path });
    expect(r.txns).toBe(2);
    expect(JSON.parse(etcdGetKey(`${r.prefix}tenants/ar-a`)!)).toMatchObject({ name: 'A' });
    expect(JSON.parse(etcdGetKey(`${r.prefix}tenants/ar-other`)!)).toMatchObject({ name: 'Other' });
    expect(r.out.filter((l) => l.startsWith('applied '))).toHaveLength(1);
    expect(r.out.at(-1)).toMatch(/^applied 1 change\(s\) at revision \d+$/);
  });

  it('a key of the file changed meanwhile: read again and the file applied over it, printed once', async () => {
    const r = run((n, prefix) => {
      if (n === 1) put(prefix, 'tenants/ar-a', TENANT('Meanwhile'));
    });
    put(r.prefix, 'tenants/ar-a', TENANT('Before'));
    // pointed at another shard: a warning each attempt makes before its commit
    put(r.prefix, 'shards/ar-s2', SHARD);
    written.add(removalRecordKey(r.prefix, 'ar-a', 'ar-s1'));
    const path = file('tenants:\n  ar-a: {shard: ar-s2, status: active, name: A}\n');
    await applyCommand(r.ctx, { file: path, force: true });
    expect(r.txns).toBe(2);
    expect(JSON.parse(etcdGetKey(`${r.prefix}tenants/ar-a`)!)).toMatchObject({ shard: 'ar-s2', name: 'A' });
    // the diff of the attempt that wrote, against the value it replaced
    expect(r.out.filter((l) => l.includes('tenants/ar-a'))).toHaveLength(1);
    expect(r.out.join('\n')).toContain('Meanwhile');
    expect(r.out.join('\n')).not.toContain('Before');
    expect(r.out.filter((l) => l.startsWith('applied '))).toHaveLength(1);
    // the warnings of each attempt are printed once, for the attempt that wrote
    expect(r.warnings.filter((w) => REPOINTED.test(w))).toHaveLength(1);
  });

  it('a commit whose outcome is unknown (etcd did not answer it) keeps the warnings made before it', async () => {
    // a review: the buffered warnings were dropped with the error, and a repointed tenant whose
    // write may have landed went unwarned
    const r = run((n) => {
      if (n === 1) throw new Error('14 UNAVAILABLE: connection reset');
    });
    put(r.prefix, 'tenants/ar-a', TENANT('Before'));
    put(r.prefix, 'shards/ar-s2', SHARD);
    const path = file('tenants:\n  ar-a: {shard: ar-s2, status: active, name: A}\n');
    const error = await applyCommand(r.ctx, { file: path, force: true }).catch((e: unknown) => e);
    expect(String(error)).toMatch(/etcd unreachable/);
    expect(r.warnings.filter((w) => REPOINTED.test(w))).toHaveLength(1);
  });

  it('--prune: a tenant created meanwhile refuses the first commit, and the next attempt prunes it too', async () => {
    const r = run((n, prefix) => {
      if (n === 1) {
        put(prefix, 'tenants/ar-late', TENANT('Late'));
        written.add(removalRecordKey(prefix, 'ar-late', 'ar-s1'));
      }
    });
    put(r.prefix, 'tenants/ar-old', TENANT('Old'));
    written.add(removalRecordKey(r.prefix, 'ar-old', 'ar-s1'));
    const path = file(
      'shards:\n  ar-s1: {master: {host: 127.0.0.1, port: 3316}, replicas: [], database: shardgate}\n' +
        'tenants:\n  ar-a: {shard: ar-s1, status: active, name: A}\n',
    );
    await applyCommand(r.ctx, { file: path, prune: true, force: true });
    expect(r.txns).toBe(2);
    expect(etcdGetKey(`${r.prefix}tenants/ar-late`)).toBeUndefined();
    expect(etcdGetKey(`${r.prefix}tenants/ar-old`)).toBeUndefined();
    expect(JSON.parse(etcdGetKey(`${r.prefix}tenants/ar-a`)!)).toMatchObject({ name: 'A' });
    expect(r.out.filter((l) => l.startsWith('applied '))).toHaveLength(1);
    for (const id of ['ar-late', 'ar-old', 'ar-a'])
      expect(r.out.filter((l) => l.includes(`tenants/${id}`))).toHaveLength(1);
  });

  it('a file exported at a revision: a key of it changed meanwhile is refused on the next read, as a re-run would be', async () => {
    const r = run((n, prefix) => {
      if (n === 1) put(prefix, 'tenants/ar-a', TENANT('Meanwhile'));
    });
    put(r.prefix, 'tenants/ar-a', TENANT('Before'));
    const { revision } = (await r.ctx.etcd.get(`${r.prefix}tenants/ar-a`).exec()).header;
    const path = file(
      `# shardgate config, etcd revision ${revision}\ntenants:\n  ar-a: {shard: ar-s1, status: active, name: A}\n`,
    );
    const error = await applyCommand(r.ctx, { file: path }).catch((e: unknown) => e);
    expect(r.txns).toBe(1);
    expect(String(error)).toContain(`${r.prefix}tenants/ar-a`);
    expect(String(error)).toMatch(/changed in etcd at revision \d+, after the file was exported at revision/);
    expect(JSON.parse(etcdGetKey(`${r.prefix}tenants/ar-a`)!)).toMatchObject({ name: 'Meanwhile' });
  });

  it('a prefix that changes before every commit: refused after WRITE_ATTEMPTS, nothing written, warnings once', async () => {
    const r = run((n, prefix) => put(prefix, 'cache/ttl_seconds', String(30 + n)));
    const path = file('cache:\n  near_max_entries: 7\n');
    const error = await applyCommand(r.ctx, { file: path }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConcurrentChangeError);
    expect((error as Error).message).toMatch(/nothing written, re-run the command/);
    expect(r.txns).toBe(WRITE_ATTEMPTS);
    expect(etcdGetKey(`${r.prefix}cache/near_max_entries`)).toBeUndefined();
    expect(r.out.filter((l) => l.startsWith('applied '))).toEqual([]);
    expect(r.warnings.filter((w) => NO_REVISION.test(w))).toHaveLength(0);
  });
});
