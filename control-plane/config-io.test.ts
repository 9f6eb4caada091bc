import { createServer as createH2Server, type Http2Server } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { type Etcd3, GRPCInvalidArgumentError, GRPCOutOfRangeError, GRPCUnavailableError } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type Change,
  changedSinceExport,
  commitChanges,
  deletedSinceExport,
  ETCD_DEFAULT_MAX_TXN_OPS,
  EXPORT_HEADER,
  exportedRevision,
  exportRevisionProblems,
  guardedTxn,
  MANAGED_SECTIONS,
  planChanges,
  problemsMessage,
  REVISION_FIELD,
  splitExportRevision,
  txnOperationCount,
  validateChanges,
} from './config-io.js';
import { type CtlContext, createCtlContext } from './ctl-context.js';
import { EtcdUnreachableError, UserError } from './ctl-errors.js';

const shard = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}';
/** another shard's value, on its own server */
const shard2 = '{"master":{"host":"127.0.0.1","port":3326},"replicas":[],"database":"shardgate"}';
const tenantOn = (id: string) => `{"shard":"${id}","status":"active"}`;

function readOf(entries: [string, string][]) {
  return { revision: 7, entries: new Map(entries), mods: new Map<string, number>() };
}

function problemsOf(entries: [string, string][], desired: [string, string | undefined][]) {
  const read = readOf(entries);
  return validateChanges(read, planChanges(read, new Map(desired)));
}

describe('planChanges', () => {
  it('writes no key whose new value says the same: fields in another order, or a default left out', () => {
    const read = readOf([
      [
        'shards/s1',
        '{"master":{"host":"127.0.0.1","port":3316},"replicas":[{"host":"127.0.0.1","port":3317,"weight":1}],"database":"shardgate"}',
      ],
      ['tenants/a', tenantOn('s1')],
    ]);
    const same = planChanges(
      read,
      new Map([
        [
          'shards/s1',
          '{"replicas":[{"port":3317,"host":"127.0.0.1"}],"master":{"port":3316,"host":"127.0.0.1"}}',
        ],
        ['tenants/a', '{"shard":"s1"}'],
      ]),
    );
    expect(same).toEqual([]);
    const other = planChanges(read, new Map([['tenants/a', '{"shard":"s1","status":"readonly"}']]));
    expect(other.map((c) => c.key)).toEqual(['tenants/a']);
  });
});

describe('validateChanges / problemsMessage', () => {
  const base: [string, string][] = [
    ['shards/s1', shard],
    ['shards/s2', shard2],
    ['tenants/a', tenantOn('s1')],
    ['tenants/b', tenantOn('s1')],
    ['placement', '{"strategy":"least-tenants","shards":["s1","s2"]}'],
  ];

  it('reports a refused shard removal once, with its real tenant count, and every further problem by key', () => {
    const problems = problemsOf(base, [['shards/s1', undefined]]);
    expect(problems.map((p) => p.key)).toEqual(['shards/s1', 'placement']);
    expect(problems[0]!.reason).toBe('shard still holds 2 tenant(s): a, b');
    const message = problemsMessage('/sg/', problems);
    expect(message).toMatch(
      /^invalid \/sg\/shards\/s1: shard still holds 2 tenant\(s\): a, b; invalid \/sg\/placement: .*s1.*; nothing written$/,
    );
    expect(message).not.toMatch(/more/);
  });

  it('refuses removing a shard whose own value is invalid while tenants are on it (the instances still route them there)', () => {
    const broken: [string, string][] = base.map(([k, v]) =>
      k === 'shards/s1' ? [k, '{"master":{"host":"127.0.0.1","port":3316},"x":1}'] : [k, v],
    );
    const problems = problemsOf(broken, [['shards/s1', undefined]]);
    expect(problems[0]).toEqual({ key: 'shards/s1', reason: 'shard still holds 2 tenant(s): a, b' });
  });

  it('names five holders and counts the others as tenants', () => {
    const many: [string, string][] = ['t1', 't2', 't3', 't4', 't5', 't6', 't7'].map((t) => [
      `tenants/${t}`,
      tenantOn('s2'),
    ]);
    const problems = problemsOf([...base, ...many], [['shards/s2', undefined]]);
    expect(problems[0]).toEqual({
      key: 'shards/s2',
      reason: 'shard still holds 7 tenant(s): t1, t2, t3, t4, t5 and 2 other tenant(s)',
    });
    expect(problems.some((p) => p.key.startsWith('tenants/'))).toBe(false);
  });

  it('lets one request move every tenant off a shard, or delete them, and remove the shard', () => {
    const moved = problemsOf(base, [
      ['shards/s1', undefined],
      ['tenants/a', tenantOn('s2')],
      ['tenants/b', undefined],
      ['placement', '{"strategy":"least-tenants","shards":["s2"]}'],
    ]);
    expect(moved).toEqual([]);
    // one tenant left behind still holds it, and only that one is named
    const half = problemsOf(base, [
      ['shards/s1', undefined],
      ['tenants/a', tenantOn('s2')],
      ['placement', '{"strategy":"least-tenants","shards":["s2"]}'],
    ]);
    expect(half).toEqual([{ key: 'shards/s1', reason: 'shard still holds 1 tenant(s): b' }]);
  });

  it('still reports a tenant changed in the same request', () => {
    const problems = problemsOf(base, [
      ['shards/s1', undefined],
      ['tenants/a', '{"shard":"s1","status":"sleepy"}'],
    ]);
    expect(problems.map((p) => p.key)).toContain('tenants/a');
  });

  it('lists every invalid key in one line', () => {
    const problems = problemsOf(base, [
      ['breakers/default/failure_threshold', 'banana'],
      ['cache/ttl_seconds', '0'],
    ]);
    const message = problemsMessage('/sg/', problems);
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toMatch(
      /^invalid \/sg\/breakers\/default\/failure_threshold: .*; invalid \/sg\/cache\/ttl_seconds: .*; nothing written$/,
    );
  });
});

describe('changedSinceExport', () => {
  it('reads the revision of the export header (past a BOM or blank lines), nothing from a file without it, and refuses a header without a revision', () => {
    expect(exportedRevision(`${EXPORT_HEADER}42\ncache: {}\n`)).toBe(42);
    expect(exportedRevision(`\uFEFF\n\n${EXPORT_HEADER}42\ncache: {}\n`)).toBe(42);
    expect(exportedRevision('cache: {}\n')).toBeUndefined();
    for (const bad of ['nope', '0', '-5', '99999999999999999999', ''])
      expect(() => exportedRevision(`${EXPORT_HEADER}${bad}\n`), bad).toThrow(
        /^the file's header ".*" names no etcd revision/,
      );
  });

  it('names each change of a key modified (or created) after the export, and no other', () => {
    const read = {
      revision: 20,
      entries: new Map([
        ['cache/ttl_seconds', '45'],
        ['replication/max_lag_seconds', '6'],
        ['tenants/new', tenantOn('s1')],
      ]),
      mods: new Map([
        ['cache/ttl_seconds', 9],
        ['replication/max_lag_seconds', 15],
        ['tenants/new', 18],
      ]),
    };
    const changes = planChanges(
      read,
      new Map<string, string | undefined>([
        ['cache/ttl_seconds', '50'],
        ['replication/max_lag_seconds', '5'],
        ['tenants/new', undefined],
      ]),
    );
    expect(changedSinceExport(read, changes, 10).map((p) => p.key)).toEqual([
      'replication/max_lag_seconds',
      'tenants/new',
    ]);
    expect(changedSinceExport(read, changes, 10)[0]!.reason).toMatch(/revision 15, after .* revision 10/);
    expect(changedSinceExport(read, changes, 18)).toEqual([]);
  });
});

describe('splitExportRevision', () => {
  const doc = { cache: { ttl_seconds: 60 } };

  it('reads the YAML header, or the JSON field, which it takes out of the document', () => {
    expect(splitExportRevision(`${EXPORT_HEADER}41\ncache: {}\n`, doc)).toEqual({ revision: 41, doc });
    const json = { [REVISION_FIELD]: 42, ...doc };
    expect(splitExportRevision(JSON.stringify(json), json)).toEqual({ revision: 42, doc });
    // both: the earlier one, so no later edit goes unnoticed
    expect(splitExportRevision(`${EXPORT_HEADER}45\n`, json).revision).toBe(42);
  });

  it('is undefined for a file with neither, and refuses a field that is not a revision', () => {
    expect(splitExportRevision('cache: {}\n', doc)).toEqual({ revision: undefined, doc });
    expect(splitExportRevision('', null)).toEqual({ revision: undefined, doc: null });
    for (const bad of ['42', 0, -1, 1.5, null])
      expect(() => splitExportRevision('', { [REVISION_FIELD]: bad, ...doc })).toThrow(UserError);
  });
});

/**
 * A real CtlContext (its call() maps errors to exit codes as every command's does) whose dial
 * reaches a local HTTP/2 server, with `etcd` replaced by the fake a test gives.
 */
describe('etcd failures of config apply, through the context of a command', () => {
  let server: Http2Server;
  let endpoint: string;
  beforeAll(async () => {
    server = createH2Server();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => {
    vi.unstubAllEnvs();
    server.close();
  });

  function ctxWith(etcd: unknown): CtlContext {
    vi.stubEnv('SHARDGATE_ETCD_ENDPOINTS', endpoint);
    vi.stubEnv('SHARDGATE_ETCD_PREFIX', '/sg/');
    const ctx = createCtlContext();
    ctx.close();
    ctx.etcd = etcd as Etcd3;
    return ctx;
  }

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

  /** an etcd whose keys at any revision are `keys` (full keys), or whose read fails with `fail` */
  function historyEtcd(keys: string[], fail?: Error) {
    const asked: number[] = [];
    const etcd = {
      getAll: () => ({
        prefix: (_p: string) => ({
          revision: (r: number) => ({
            keys: async () => {
              asked.push(r);
              if (fail) throw fail;
              return keys;
            },
          }),
        }),
      }),
    };
    return { etcd, asked };
  }

  const now = {
    revision: 40,
    entries: new Map([['cache/ttl_seconds', '45']]),
    mods: new Map([['cache/ttl_seconds', 5]]),
  };
  const plan = planChanges(
    now,
    new Map([
      ['cache/ttl_seconds', '50'],
      ['tenants/gone', tenantOn('s1')],
      ['tenants/brand-new', tenantOn('s1')],
    ]),
  );

  it('refuses to re-create a key that existed at the export revision (deleted since)', async () => {
    const { etcd, asked } = historyEtcd(['/sg/tenants/gone', '/sg/cache/ttl_seconds']);
    const r = await exportRevisionProblems(ctxWith(etcd), now, plan, 30);
    expect(asked).toEqual([30]);
    expect(r.notes).toEqual([]);
    expect(r.problems).toEqual([
      {
        key: 'tenants/gone',
        reason: 'deleted in etcd after the file was exported at revision 30 (export again, or --force)',
      },
    ]);
  });

  it("refuses a file whose revision is above etcd's, without reading history", async () => {
    const { etcd, asked } = historyEtcd([]);
    const r = await exportRevisionProblems(ctxWith(etcd), now, plan, 99_999_999);
    expect(asked).toEqual([]);
    expect(r.notes).toEqual([
      'the file says revision 99999999 but etcd is at 40: it was not exported from this etcd (export again, or --force)',
    ]);
    expect(problemsMessage('/sg/', r.problems, r.notes)).toBe(`${r.notes[0]}; nothing written`);
  });

  it('refuses creating keys when etcd compacted the export revision away: deletions cannot be checked', async () => {
    const compacted = new GRPCOutOfRangeError(
      '11 OUT_OF_RANGE: etcdserver: mvcc: required revision has been compacted',
    );
    const { etcd } = historyEtcd([], compacted);
    const r = await exportRevisionProblems(ctxWith(etcd), now, plan, 30);
    expect(r.notes).toHaveLength(1);
    expect(r.notes[0]).toMatch(
      /^cannot check whether the 2 key\(s\) the file would create \(\/sg\/tenants\/brand-new, \/sg\/tenants\/gone\) were deleted in etcd after it was exported at revision 30: etcd has compacted its history past that revision \(export again, or --force\)$/,
    );
    // a file that creates nothing needs no history
    const updateOnly = plan.filter((c) => c.old !== undefined);
    expect(await exportRevisionProblems(ctxWith(etcd), now, updateOnly, 30)).toEqual({
      notes: [],
      problems: [],
    });
    // any other failure of that read is an unreachable etcd
    const down = historyEtcd([], new GRPCUnavailableError('14 UNAVAILABLE: Connection dropped'));
    await expect(exportRevisionProblems(ctxWith(down.etcd), now, plan, 30)).rejects.toBeInstanceOf(
      EtcdUnreachableError,
    );
  });
});

describe('deletedSinceExport', () => {
  it('names each created key that existed at the export revision, and no update or delete', () => {
    const changes: Change[] = [
      { key: 'tenants/back', old: undefined, new: tenantOn('s1') },
      { key: 'tenants/new', old: undefined, new: tenantOn('s1') },
      { key: 'cache/ttl_seconds', old: '45', new: '50' },
      { key: 'tenants/old', old: tenantOn('s1'), new: undefined },
    ];
    const atExport = new Set(['tenants/back', 'cache/ttl_seconds', 'tenants/old']);
    expect(deletedSinceExport(changes, atExport, 12)).toEqual([
      {
        key: 'tenants/back',
        reason: 'deleted in etcd after the file was exported at revision 12 (export again, or --force)',
      },
    ]);
  });
});
