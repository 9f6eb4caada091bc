import { describe, expect, it } from 'vitest';
import { ConcurrentChangeError } from './ctl-errors.js';
import { fakeCtlContext } from './fake-ctl-context.js';
import { WRITE_ATTEMPTS, writeKeys } from './write-keys.js';

/**
 * A context whose etcd holds one shard, answers every read with a newer revision (someone else
 * writes meanwhile) and refuses the first `conflicts` guarded transactions as a changed prefix.
 */
function busyEtcd(conflicts: number) {
  let revision = 10;
  const txns: number[] = [];
  const out: string[] = [];
  const shard = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[]}';
  const ctx = fakeCtlContext(
    {
      getAll: () => ({
        prefix: () => ({
          exec: async () => ({
            header: { revision: String(++revision) },
            kvs: [{ key: Buffer.from('/sg/shards/s1'), value: Buffer.from(shard), mod_revision: '3' }],
          }),
        }),
      }),
      kv: {
        txn: async () => {
          txns.push(revision);
          return { succeeded: txns.length > conflicts, header: { revision: String(revision + 1) } };
        },
      },
    },
    out,
  );
  return { ctx, txns, out };
}

describe('writeKeys', () => {
  it('reads again and retries a write whose prefix changed in between, computing from the new read', async () => {
    const { ctx, txns, out } = busyEtcd(3);
    const reads: number[] = [];
    await writeKeys(ctx, (read) => {
      reads.push(read.revision);
      return new Map([['tenants/t1', '{"shard":"s1"}']]);
    });
    expect(txns).toHaveLength(4);
    // each attempt computed from its own read
    expect(new Set(reads).size).toBe(4);
    expect(out.at(-1)).toMatch(/^revision \d+$/);
  });

  it('gives up after WRITE_ATTEMPTS changes in between, nothing written, saying to re-run', async () => {
    const { ctx, txns } = busyEtcd(Number.POSITIVE_INFINITY);
    const error = await writeKeys(ctx, () => new Map([['tenants/t1', '{"shard":"s1"}']])).catch((e) => e);
    expect(error).toBeInstanceOf(ConcurrentChangeError);
    expect((error as Error).message).toMatch(/changed since revision \d+ was read; nothing written, re-run/);
    expect(txns).toHaveLength(WRITE_ATTEMPTS);
  });
});
