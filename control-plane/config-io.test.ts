import { describe, expect, it } from 'vitest';
import {
  changedSinceExport,
  EXPORT_HEADER,
  exportedRevision,
  planChanges,
  problemsMessage,
  REVISION_FIELD,
  splitExportRevision,
  validateChanges,
} from './config-io.js';
import { UserError } from './ctl-errors.js';

const shard = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[],"database":"shardgate"}';
const tenantOn = (id: string) => `{"shard":"${id}","status":"active"}`;

function readOf(entries: [string, string][]) {
  return { revision: 7, entries: new Map(entries), mods: new Map<string, number>() };
}

function problemsOf(entries: [string, string][], desired: [string, string | undefined][]) {
  const read = readOf(entries);
  return validateChanges(read, planChanges(read, new Map(desired)));
}

describe('validateChanges / problemsMessage', () => {
  const base: [string, string][] = [
    ['shards/s1', shard],
    ['shards/s2', shard],
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
  it('reads the revision of the export header, and nothing from a file without it', () => {
    expect(exportedRevision(`${EXPORT_HEADER}42\ncache: {}\n`)).toBe(42);
    expect(exportedRevision('cache: {}\n')).toBeUndefined();
    expect(exportedRevision(`${EXPORT_HEADER}nope\n`)).toBeUndefined();
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
