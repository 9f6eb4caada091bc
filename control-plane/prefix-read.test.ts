import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseDbHosts } from '../src/config/db-hosts.js';
import { type CtlContextStub, ctlContextStub } from '../test/helpers/ctl-context-stub.js';
import { loadState, readPrefix } from './prefix-read.js';

const kv = (key: string, value: string, mod: number) => ({
  key: Buffer.from(key),
  value: Buffer.from(value),
  mod_revision: String(mod),
});

describe('readPrefix / loadState', () => {
  let stub: CtlContextStub;
  beforeAll(async () => {
    stub = await ctlContextStub();
  });
  afterAll(() => stub.close());

  const shard = (host: string) => `{"master":{"host":"${host}","port":3306},"replicas":[]}`;
  const etcd = {
    getAll: () => ({
      prefix: (prefix: string) => ({
        exec: async () => ({
          header: { revision: '12' },
          kvs: [kv(`${prefix}shards/s1`, shard('db-1'), 5), kv(`${prefix}shards/s2`, shard('10.9.9.9'), 9)],
        }),
      }),
    }),
  };

  it("reads the keys relative to the prefix, and validates them with the context's SHARDGATE_DB_HOSTS", async () => {
    const ctx = stub.withEtcd(etcd);
    ctx.env = { ...ctx.env, SHARDGATE_DB_HOSTS: parseDbHosts('db-1') };
    const read = await readPrefix(ctx);
    expect(read.revision).toBe(12);
    expect([...read.mods]).toEqual([
      ['shards/s1', 5],
      ['shards/s2', 9],
    ]);
    const state = loadState(read);
    expect([...state.snapshot.shards.keys()]).toEqual(['s1']);
    expect(state.rejected.map((r) => r.key)).toEqual(['shards/s2']);
  });

  it('allows every server when the context has no list', async () => {
    const ctx = stub.withEtcd(etcd);
    ctx.env = { ...ctx.env, SHARDGATE_DB_HOSTS: undefined };
    const state = loadState(await readPrefix(ctx));
    expect([...state.snapshot.shards.keys()]).toEqual(['s1', 's2']);
    expect(state.rejected).toEqual([]);
  });
});
