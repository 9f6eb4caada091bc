import { describe, expect, it } from 'vitest';
import { parseDbHosts } from '../src/config/db-hosts.js';
import { planChanges } from './change-plan.js';
import type { PrefixRead } from './prefix-read.js';
import { problemsMessage, validateChanges } from './validate-changes.js';

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
    expect(problems.map((p) => p.key)).toEqual(['shards/s1', 'shards/s1']);
    expect(problems[0]!.reason).toBe('shard still holds 2 tenant(s): a, b');
    const message = problemsMessage('/sg/', problems);
    expect(message).toBe(
      'invalid /sg/shards/s1: shard still holds 2 tenant(s): a, b; invalid /sg/shards/s1: shard is still listed in placement: take it out of placement first (config apply); nothing written',
    );
    expect(message).not.toMatch(/more/);
  });

  it('judged from the values in force too, a refused shard removal is one problem, not two saying the same', () => {
    const read = readOf(base);
    const problems = validateChanges(
      read,
      planChanges(read, new Map([['shards/s1', undefined]])),
      new Map(base),
    );
    expect(problems.filter((p) => p.key === 'shards/s1').map((p) => p.reason)).toEqual([
      'shard still holds 2 tenant(s): a, b',
      'shard is still listed in placement: take it out of placement first (config apply)',
    ]);
  });

  it('a new tenant on a shard deleted but kept for its tenants (as the instances hold it) is refused', () => {
    // etcd no longer has shards/s1; the values in force (restored from history) still do
    const inForce = new Map(base);
    const read = readOf(base.filter(([key]) => key !== 'shards/s1'));
    const problems = validateChanges(
      read,
      planChanges(read, new Map([['tenants/c', tenantOn('s1')]])),
      inForce,
    );
    expect(problems).toEqual([
      { key: 'tenants/c', reason: 'shard "s1" is deleted (kept only for the tenants still on it)' },
    ]);
    // a tenant still on it may change
    const readonly = '{"shard":"s1","status":"readonly"}';
    expect(validateChanges(read, planChanges(read, new Map([['tenants/a', readonly]])), inForce)).toEqual([]);
  });

  it('a shard without tenants but still in placement: the cause is named on the shard, once', () => {
    const problems = problemsOf(base, [['shards/s2', undefined]]);
    expect(problems).toEqual([
      {
        key: 'shards/s2',
        reason: 'shard is still listed in placement: take it out of placement first (config apply)',
      },
    ]);
    // taken out of placement in the same request, the shard goes
    expect(
      problemsOf(base, [
        ['shards/s2', undefined],
        ['placement', '{"strategy":"least-tenants","shards":["s1"]}'],
      ]),
    ).toEqual([]);
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

  it('names the known shards with an unknown one, not a deleted one or one never valid', () => {
    const entries: [string, string][] = [...base, ['shards/s3', '{"master":{}}']];
    const problems = problemsOf(entries, [
      ['tenants/c', tenantOn('s9')],
      ['shards/s2', undefined],
    ]);
    expect(problems.find((p) => p.key === 'tenants/c')?.reason).toBe('unknown shard "s9" (known: s1)');
    expect(problems.map((p) => p.key)).toContain('shards/s2');
    // an invalid value whose last good one is in force: the instances still know that shard
    const kept = readOf(entries);
    const inForce = new Map([...entries, ['shards/s3', shard]]);
    const withKept = validateChanges(
      kept,
      planChanges(kept, new Map([['tenants/c', tenantOn('s9')]])),
      inForce,
    );
    expect(withKept).toEqual([{ key: 'tenants/c', reason: 'unknown shard "s9" (known: s1, s2, s3)' }]);
    const none = problemsOf([], [['tenants/c', tenantOn('s9')]]);
    expect(none).toEqual([{ key: 'tenants/c', reason: 'unknown shard "s9" (known: none)' }]);
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

  it('counts a tenant whose new value is no JSON object as still on the shard: the instances keep its last good value', () => {
    for (const value of ['not json', 'null', '7']) {
      const problems = problemsOf(base, [
        ['shards/s1', undefined],
        ['tenants/a', tenantOn('s2')],
        ['tenants/b', value],
      ]);
      expect(problems[0], value).toEqual({ key: 'shards/s1', reason: 'shard still holds 1 tenant(s): b' });
      expect(problems.map((p) => p.key)).toContain('tenants/b');
    }
  });

  it("judges shard addresses by the read's SHARDGATE_DB_HOSTS, as an instance with that list does", () => {
    const read: PrefixRead = { ...readOf(base), dbHosts: parseDbHosts('db-1') };
    const elsewhere = '{"master":{"host":"10.9.9.9","port":3306},"replicas":[],"database":"shardgate"}';
    const problems = validateChanges(read, planChanges(read, new Map([['shards/s3', elsewhere]])));
    expect(problems.map((p) => p.key)).toEqual(['shards/s3']);
    expect(problems[0]!.reason).toContain('SHARDGATE_DB_HOSTS');
    // the same write without a list: any server
    const open = readOf(base);
    expect(validateChanges(open, planChanges(open, new Map([['shards/s3', elsewhere]])))).toEqual([]);
  });

  it('words a change made in etcd since the export as refused, not invalid', () => {
    expect(
      problemsMessage('/sg/', [
        { key: 'cache/ttl_seconds', reason: 'changed in etcd at revision 9', conflict: true },
        { key: 'placement', reason: 'not JSON' },
      ]),
    ).toBe(
      'refused /sg/cache/ttl_seconds: changed in etcd at revision 9; invalid /sg/placement: not JSON; nothing written',
    );
  });
});
