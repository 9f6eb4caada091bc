import { GRPCOutOfRangeError, GRPCUnavailableError } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CtlContextStub, ctlContextStub } from '../test/helpers/ctl-context-stub.js';
import { type Change, planChanges } from './change-plan.js';
import { EtcdUnreachableError, UserError } from './ctl-errors.js';
import {
  changedSinceExport,
  deletedSinceExport,
  EXPORT_HEADER,
  exportedRevision,
  exportRevisionProblems,
  REVISION_FIELD,
  splitExportRevision,
} from './export-revision.js';
import { problemsMessage } from './validate-changes.js';

const tenantOn = (id: string) => `{"shard":"${id}","status":"active"}`;

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

/** through the context of a command (test/helpers/ctl-context-stub.ts): failures map to exit codes as there */
describe('exportRevisionProblems: the history read of config apply', () => {
  let stub: CtlContextStub;
  beforeAll(async () => {
    stub = await ctlContextStub();
  });
  afterAll(() => stub.close());
  const ctxWith = (etcd: unknown) => stub.withEtcd(etcd);

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
        conflict: true,
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
        conflict: true,
        reason: 'deleted in etcd after the file was exported at revision 12 (export again, or --force)',
      },
    ]);
  });
});
