import { GRPCInvalidArgumentError, GRPCUnavailableError } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CtlContextStub, ctlContextStub } from '../test/helpers/ctl-context-stub.js';
import { type Change, MANAGED_SECTIONS } from './change-plan.js';
import { EtcdUnreachableError, UserError } from './ctl-errors.js';
import {
  commitChanges,
  ETCD_DEFAULT_MAX_TXN_OPS,
  exactKeys,
  guardedTxn,
  guardFor,
  txnOperationCount,
} from './guarded-commit.js';

const shard = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}';
const tenantOn = (id: string) => `{"shard":"${id}","status":"active"}`;

function readOf(entries: [string, string][]) {
  return { revision: 7, entries: new Map(entries), mods: new Map<string, number>() };
}

/** through the context of a command (test/helpers/ctl-context-stub.ts): failures map to exit codes as there */
describe('etcd failures of config apply, through the context of a command', () => {
  let stub: CtlContextStub;
  beforeAll(async () => {
    stub = await ctlContextStub();
  });
  afterAll(() => stub.close());
  const ctxWith = (etcd: unknown) => stub.withEtcd(etcd);

  const many = (n: number): Change[] =>
    Array.from({ length: n }, (_, i) => ({ key: `tenants/t${i}`, old: undefined, new: tenantOn('s1') }));
  const withShard = { ...readOf([['shards/s1', shard]]), revision: 50 };

  it('counts a commit as etcd counts it against --max-txn-ops: the longest list, not the sum', () => {
    const txn = guardedTxn('/sg/', 50, many(130));
    expect(txn.compare).toHaveLength(MANAGED_SECTIONS.length);
    expect(txn.success).toHaveLength(130);
    expect(txnOperationCount(txn)).toBe(130);
    expect(txnOperationCount(guardedTxn('/sg/', 50, many(1)))).toBe(MANAGED_SECTIONS.length);
    expect(ETCD_DEFAULT_MAX_TXN_OPS).toBe(128);
  });

  it('guards every managed section: a section/ by the range of its keys, placement by its key', () => {
    const compare = guardedTxn('/sg/', 50, []).compare;
    const shards = compare.find((c) => c.key.toString() === '/sg/shards/');
    // '/' + 1 = '0': every key that starts with /sg/shards/ and no other
    expect(shards?.range_end?.toString()).toBe('/sg/shards0');
    expect(compare.find((c) => c.key.toString() === '/sg/placement')?.range_end).toBeUndefined();
    expect(compare.every((c) => c.mod_revision === 51 && c.target === 'Mod' && c.result === 'Less')).toBe(
      true,
    );
  });

  it('narrow: a write of tenant entries and move marks alone is guarded by the other sections and its own tenant keys', () => {
    const tenantWrite: Change[] = [
      { key: 'tenants/a', old: undefined, new: tenantOn('s1') },
      { key: 'moving/a', old: '{}', new: undefined },
    ];
    const narrow = guardFor(tenantWrite, { narrow: true });
    expect(narrow).not.toContain('tenants/');
    expect(narrow).toEqual([...MANAGED_SECTIONS.filter((s) => s !== 'tenants/'), 'tenants/a']);
    const compare = guardedTxn('/sg/', 50, tenantWrite, narrow).compare;
    // the tenant key alone, not a range
    expect(compare.find((c) => c.key.toString() === '/sg/tenants/a')?.range_end).toBeUndefined();
    expect(compare.find((c) => c.key.toString() === '/sg/shards/')?.range_end?.toString()).toBe(
      '/sg/shards0',
    );
    // not narrow, or anything but tenants and move marks in the write: every section
    expect(guardFor(tenantWrite)).toEqual(MANAGED_SECTIONS);
    const withShardKey = [...tenantWrite, { key: 'shards/s1', old: undefined, new: shard }];
    expect(guardFor(withShardKey, { narrow: true })).toEqual(MANAGED_SECTIONS);
  });

  it('compares exactly the keys written and the shards their values name, as read; none for a key the read lacked', () => {
    const read = {
      mods: new Map([
        ['tenants/a', 40],
        ['shards/s1', 12],
        ['shards/s2', 13],
        ['placement', 20],
      ]),
    };
    const changes: Change[] = [
      { key: 'tenants/a', old: tenantOn('s1'), new: tenantOn('s2') },
      { key: 'tenants/new', old: undefined, new: tenantOn('s1') },
      { key: 'placement', old: '{}', new: '{"strategy":"least-tenants","shards":["s1","s2"]}' },
    ];
    expect(exactKeys(read, changes)).toEqual(
      new Map([
        ['tenants/a', 40],
        ['shards/s2', 13],
        ['shards/s1', 12],
        ['placement', 20],
      ]),
    );
    const narrow = guardFor(changes.slice(0, 2), { narrow: true });
    const compare = guardedTxn(
      '/sg/',
      50,
      changes.slice(0, 2),
      narrow,
      exactKeys(read, changes.slice(0, 2)),
    ).compare;
    const of = (key: string) => compare.filter((c) => c.key.toString() === `/sg/${key}`);
    // a key written is compared once, exactly; a new one by "not modified since the read"
    expect(of('tenants/a')).toEqual([expect.objectContaining({ result: 'Equal', mod_revision: 40 })]);
    expect(of('tenants/new')).toEqual([expect.objectContaining({ result: 'Less', mod_revision: 51 })]);
    expect(of('shards/s2')).toEqual([expect.objectContaining({ result: 'Equal', mod_revision: 13 })]);
  });

  it('a transaction etcd refuses as too large is a user error (exit 1) in one line saying what to do; any other failure exit 2', async () => {
    const txns: unknown[] = [];
    const ctx = ctxWith({
      kv: {
        txn: async (req: unknown) => {
          txns.push(req);
          throw new GRPCInvalidArgumentError(
            '3 INVALID_ARGUMENT: etcdserver: too many operations in txn request',
          );
        },
      },
    });
    const error = await commitChanges(ctx, withShard, many(130)).catch((e: unknown) => e);
    expect(txns).toHaveLength(1);
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).exitCode).toBe(1);
    const message = (error as Error).message;
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain('130 change(s)');
    expect(message).toContain('too many operations in txn request');
    expect(message).toContain('nothing written');
    expect(message).toContain('apply the file in parts');
    expect(message).toContain("raise etcd's --max-txn-ops");
    // any other failure of the transaction is still an unreachable etcd (exit 2)
    const down = ctxWith({
      kv: {
        txn: async () => {
          throw new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped');
        },
      },
    });
    const other = await commitChanges(down, withShard, many(3)).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(EtcdUnreachableError);
    expect((other as EtcdUnreachableError).exitCode).toBe(2);
  });
});
