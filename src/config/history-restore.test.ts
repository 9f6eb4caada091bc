import { describe, expect, it } from 'vitest';
import { ConfigState } from './config-state.js';
import {
  applyRestorePlan,
  type Entry,
  HISTORY_READS,
  HISTORY_WATCHES,
  type PutsReader,
  planHistoryRestore,
  type VersionReader,
} from './history-restore.js';

const SHARD = '{"master":{"host":"127.0.0.1","port":3316},"replicas":[]}';

/** etcd's history in memory: puts and deletes in revision order, one per revision */
function history(events: [key: string, value: string | null][]) {
  const log = events.map(([key, value], i) => ({ key, value, rev: i + 1 }));
  const read: VersionReader = async (key, revision) => {
    const last = log.filter((e) => e.key === key && e.rev <= revision).at(-1);
    if (!last || last.value === null) return undefined;
    // mod_revision: the revision of that put
    return { value: last.value, mod: last.rev };
  };
  const now = (): Entry[] => {
    const live = new Map<string, Entry>();
    for (const e of log) {
      if (e.value === null) live.delete(e.key);
      else live.set(e.key, [e.key, e.value, e.rev]);
    }
    return [...live.values()];
  };
  /** the revisions of the puts of `key` after `after`, as a watch from there sees them */
  const puts: PutsReader = async (key, after) =>
    log.filter((e) => e.key === key && e.rev > after && e.value !== null).map((e) => e.rev);
  return { read, puts, now, revision: log.length };
}

/** what a starting process enforces with the plan (as etcd-config-store.ts applies it) */
async function startWith(h: ReturnType<typeof history>) {
  const state = new ConfigState();
  const plan = await planHistoryRestore(h.now(), h.read, {}, h.revision, h.puts);
  if (!plan) {
    state.load(h.now());
    return { state, plan };
  }
  applyRestorePlan(state, plan);
  return { state, plan };
}

/** what an instance that ran through `events`, one change at a time, enforces */
function runningThrough(events: [key: string, value: string | null][]) {
  const state = new ConfigState();
  state.load([]);
  events.forEach(([key, value], i) => {
    if (value === null) state.delete(key);
    else state.put(key, value, i + 1);
  });
  return state;
}

/** the parts of a state a request sees, and what it reports rejected */
const enforced = (state: ConfigState) => ({
  shards: [...state.snapshot.shards.keys()].sort(),
  tenants: Object.fromEntries([...state.snapshot.tenants].sort()),
  placement: state.snapshot.placement,
  rejected: state.rejected.map((r) => r.key),
});

describe('planHistoryRestore', () => {
  it('puts back the newest earlier version of a rejected key and rejects the current one, keeping it', async () => {
    const h = history([
      ['shards/s1', SHARD],
      ['tenants/t1', '{"shard":"s1","status":"active"}'],
      ['tenants/t1', '{"shard":"s1","status":"readonly"}'],
      ['tenants/t1', 'not json'],
    ]);
    const { state, plan } = await startWith(h);
    expect(state.snapshot.tenants.get('t1')?.status).toBe('readonly');
    expect(state.rejected).toEqual([
      { key: 'tenants/t1', reason: 'must be valid JSON; keeping last good value' },
    ]);
    expect(plan?.restored).toEqual(new Map([['tenants/t1', 3]]));
  });

  it('skips an earlier version that names a shard that never existed, and takes the one before', async () => {
    const h = history([
      ['shards/s1', SHARD],
      ['tenants/t1', '{"shard":"s1","status":"readonly"}'],
      ['tenants/t1', '{"shard":"ghost","status":"active"}'],
      ['tenants/t1', 'not json'],
    ]);
    const { state } = await startWith(h);
    expect(state.snapshot.tenants.get('t1')).toMatchObject({ shard: 's1', status: 'readonly' });
  });

  it('keeps a shard deleted under a tenant written again after the delete (made readonly)', async () => {
    const h = history([
      ['shards/s2', SHARD],
      ['tenants/t2', '{"shard":"s2","status":"active"}'],
      ['shards/s2', null],
      ['tenants/t2', '{"shard":"s2","status":"readonly"}'],
      ['cache/ttl_seconds', '30'],
    ]);
    const { state } = await startWith(h);
    expect(state.snapshot.tenants.get('t2')).toEqual({ shard: 's2', status: 'readonly' });
    expect(state.snapshot.shards.has('s2')).toBe(true);
    expect(state.rejected).toEqual([
      { key: 'shards/s2', reason: 'deleted while 1 tenant(s) still on it; keeping it' },
    ]);
  });

  it('keeps a shard created after the tenant that names it was written, and deleted under it', async () => {
    // an outside check: the tenant's put naming a shard not there yet was refused, the shard's
    // put made the running instances take it (readonly, on sb), the shard's delete kept sb; a
    // starting instance found no sb at the tenant's revision and served the older entry
    // (shard-1, active): writes to another database, 201 where the running ones answered 423
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['tenants/t', '{"shard":"s1","status":"active"}'],
      ['tenants/t', '{"shard":"sb","status":"readonly"}'],
      ['shards/sb', SHARD.replace('3316', '3326')],
      ['cache/ttl_seconds', '30'],
      ['shards/sb', null],
    ];
    const running = enforced(runningThrough(events));
    expect(running.tenants.t).toEqual({ shard: 'sb', status: 'readonly' });
    expect(enforced((await startWith(history(events))).state)).toEqual(running);
    // a new tenant written before its shard existed: served on it, not 404
    const fresh: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['tenants/n', '{"shard":"sc","status":"active"}'],
      ['shards/sc', SHARD],
      ['shards/sc', null],
    ];
    const runningFresh = enforced(runningThrough(fresh));
    expect(runningFresh.tenants.n).toEqual({ shard: 'sc', status: 'active' });
    expect(enforced((await startWith(history(fresh))).state)).toEqual(runningFresh);
  });

  it('watches a gone shard once for all the tenants naming it, and at most HISTORY_WATCHES times', async () => {
    // a review: one watch (about 1 s each) per tenant, 100 tenants naming a typo'd shard took 50 s
    const events: [string, string | null][] = [['shards/s1', SHARD]];
    for (let t = 0; t < 10; t++) events.push([`tenants/t${t}`, '{"shard":"s1","status":"active"}']);
    // written in the reverse of key order, so each tenant's revision is lower than the last one's
    for (let t = 9; t >= 0; t--) events.push([`tenants/t${t}`, '{"shard":"ghost","status":"readonly"}']);
    const h = history(events);
    let watches = 0;
    const counted: PutsReader = async (k, after) => {
      watches++;
      return h.puts(k, after);
    };
    const plan = await planHistoryRestore(h.now(), h.read, {}, h.revision, counted);
    expect(watches).toBe(1);
    const state = new ConfigState();
    applyRestorePlan(state, plan!);
    expect(enforced(state)).toEqual(enforced(runningThrough(events)));
    // a tenant put again and again naming it: its older versions want watches further back
    const again: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['tenants/t', '{"shard":"s1","status":"active"}'],
    ];
    for (let v = 0; v < 10; v++)
      again.push(['tenants/t', `{"shard":"ghost","status":"readonly","name":"v${v}"}`]);
    const h2 = history(again);
    watches = 0;
    await planHistoryRestore(h2.now(), h2.read, {}, h2.revision, async (k, after) => {
      watches++;
      return h2.puts(k, after);
    });
    expect(watches).toBeLessThanOrEqual(HISTORY_WATCHES);
  });

  it('keeps what a watch read when a later one, further back, fails (compacted)', async () => {
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['tenants/a', '{"shard":"s1","status":"active"}'],
      ['tenants/a', '{"shard":"sx","status":"active"}'],
      ['tenants/b', '{"shard":"s1","status":"active"}'],
      ['tenants/b', '{"shard":"sx","status":"readonly"}'],
      ['shards/sx', SHARD],
      ['shards/sx', null],
      ['tenants/a', '{"shard":"sx","status":"suspended"}'],
    ];
    const h = history(events);
    // a's older version (revision 3) is below what the history still has for a watch
    const compactedBelow5: PutsReader = async (k, after) => {
      if (after < 4) throw new Error('mvcc: required revision has been compacted');
      return h.puts(k, after);
    };
    const plan = await planHistoryRestore(h.now(), h.read, {}, h.revision, compactedBelow5);
    const state = new ConfigState();
    applyRestorePlan(state, plan!);
    expect(state.snapshot.tenants.get('b')).toEqual({ shard: 'sx', status: 'readonly' });
  });

  it('does not take a shard created only after the tenant version naming it was replaced', async () => {
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['tenants/t', '{"shard":"s1","status":"active"}'],
      // refused (no sb yet), then replaced by a put the running instances refuse too
      ['tenants/t', '{"shard":"sb","status":"readonly"}'],
      ['tenants/t', 'not json'],
      ['shards/sb', SHARD],
      ['shards/sb', null],
    ];
    const running = enforced(runningThrough(events));
    expect(running.tenants.t).toEqual({ shard: 's1', status: 'active' });
    expect(enforced((await startWith(history(events))).state)).toEqual(running);
  });

  it('restores the shard from a tenant on it when another tenant naming it, put after the delete, is looked at first', async () => {
    const h = history([
      ['shards/s2', SHARD],
      ['tenants/t2', '{"shard":"s2","status":"active"}'],
      ['shards/s2', null],
      // refused by a running instance: it never stood on s2; its id sorts first
      ['tenants/a-new', '{"shard":"s2","status":"active"}'],
    ]);
    const { state } = await startWith(h);
    expect(state.snapshot.shards.has('s2')).toBe(true);
    expect(state.snapshot.tenants.get('t2')?.shard).toBe('s2');
  });

  it('enforces what a running instance does with writes naming a kept shard after its delete', async () => {
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['shards/s2', SHARD],
      ['placement', '{"strategy":"least-tenants","shards":["s1"]}'],
      ['tenants/on-s1', '{"shard":"s1","status":"active"}'],
      ['tenants/held', '{"shard":"s2","status":"active"}'],
      ['cache/ttl_seconds', '40'],
      ['shards/s2', null],
      // refused by a running instance: a new tenant, a move onto the kept shard, a placement
      // naming it; taken: a tenant still on it made readonly
      ['tenants/new', '{"shard":"s2","status":"active"}'],
      ['tenants/on-s1', '{"shard":"s2","status":"active"}'],
      ['placement', '{"strategy":"least-tenants","shards":["s1","s2"]}'],
      ['tenants/held', '{"shard":"s2","status":"readonly"}'],
      ['cache/ttl_seconds', '30'],
    ];
    const running = runningThrough(events);
    expect(enforced(running)).toEqual({
      shards: ['s1', 's2'],
      tenants: {
        held: { shard: 's2', status: 'readonly' },
        'on-s1': { shard: 's1', status: 'active' },
      },
      placement: { strategy: 'least-tenants', shards: ['s1'] },
      rejected: ['placement', 'shards/s2', 'tenants/new', 'tenants/on-s1'],
    });
    // before, a starting instance took all three: the restored shard was loaded as present
    const { state } = await startWith(history(events));
    expect(enforced(state)).toEqual(enforced(running));

    // a tenant that went onto s1 after the delete, then named s2: its s1 version stays
    const later: [string, string | null][] = [
      ...events,
      ['tenants/late', '{"shard":"s1","status":"active"}'],
      ['tenants/late', '{"shard":"s2","status":"readonly"}'],
    ];
    const second = await startWith(history(later));
    expect(enforced(second.state)).toEqual(enforced(runningThrough(later)));
    expect(second.state.snapshot.tenants.get('late')).toEqual({ shard: 's1', status: 'active' });
  });

  it('keeps a shard deleted while a tenant is still on it, as a running instance does', async () => {
    const h = history([
      ['shards/s2', SHARD],
      ['tenants/t2', '{"shard":"s2","status":"active"}'],
      ['shards/s2', null],
    ]);
    const { state } = await startWith(h);
    expect(state.snapshot.tenants.get('t2')?.shard).toBe('s2');
    expect(state.snapshot.shards.has('s2')).toBe(true);
    expect(state.rejected).toEqual([
      { key: 'shards/s2', reason: 'deleted while 1 tenant(s) still on it; keeping it' },
    ]);
  });

  it('restores nothing for a key that never had a good version, and plans nothing when all is valid', async () => {
    const bad = history([
      ['shards/s1', SHARD],
      ['tenants/t1', '{"shard":"s1","status":"nope"}'],
    ]);
    const { state, plan } = await startWith(bad);
    expect(plan).toBeUndefined();
    expect(state.snapshot.tenants.has('t1')).toBe(false);
    const good = history([['shards/s1', SHARD]]);
    expect(await planHistoryRestore(good.now(), good.read, {}, good.revision)).toBeUndefined();
  });

  it('stops at a version it cannot read (compacted) and reads at most HISTORY_READS versions in all', async () => {
    const h = history([
      ['shards/s1', SHARD],
      ['tenants/t1', '{"shard":"s1","status":"readonly"}'],
      ['tenants/t1', 'not json'],
    ]);
    const compacted: VersionReader = async () => {
      throw new Error('mvcc: required revision has been compacted');
    };
    expect(await planHistoryRestore(h.now(), compacted, {}, h.revision)).toBeUndefined();

    // many rejected keys with long histories: the reads are bounded
    const events: [string, string | null][] = [['shards/s1', SHARD]];
    for (let t = 0; t < 50; t++) for (let v = 0; v < 10; v++) events.push([`tenants/t${t}`, `bad ${v}`]);
    const long = history(events);
    let reads = 0;
    await planHistoryRestore(
      long.now(),
      async (k, r) => {
        reads++;
        return long.read(k, r);
      },
      {},
      long.revision,
    );
    expect(reads).toBeLessThanOrEqual(HISTORY_READS);
  });

  it('keeps a deleted shard as it was right before the delete: a failover before it is not undone', async () => {
    const moved = '{"master":{"host":"127.0.0.1","port":3317},"replicas":[]}';
    const events: [string, string | null][] = [
      ['shards/s2', SHARD],
      ['tenants/t2', '{"shard":"s2","status":"active"}'],
    ];
    // unrelated writes between, so the deletion's revision has to be searched for
    for (let i = 0; i < 40; i++) events.push([`cache/ttl_seconds`, String(60 + i)]);
    events.push(['shards/s2', moved]);
    for (let i = 0; i < 25; i++) events.push([`tenants/x${i}`, '{"shard":"s1","status":"active"}']);
    events.push(['shards/s1', SHARD], ['shards/s2', null], ['cache/ttl_seconds', '30']);
    const h = history(events);
    const { state, plan } = await startWith(h);
    expect(state.snapshot.shards.get('s2')?.master).toEqual({ host: '127.0.0.1', port: 3317 });
    expect(plan?.restored.get('shards/s2')).toBe(43);

    // its last version was one the instances rejected (an unknown field): the one before it
    const rejectedLast = history([
      ['shards/s2', SHARD],
      ['tenants/t2', '{"shard":"s2","status":"active"}'],
      ['shards/s2', moved],
      ['shards/s2', '{"master":{"host":"127.0.0.1","port":3318},"replicas":[],"x":1}'],
      ['shards/s2', null],
    ]);
    const second = await startWith(rejectedLast);
    expect(second.state.snapshot.shards.get('s2')?.master).toEqual({ host: '127.0.0.1', port: 3317 });
  });

  it('looks a deleted shard up once for all its tenants, so 40 of them leave reads for the rest (review)', async () => {
    const moved = '{"master":{"host":"127.0.0.1","port":3399},"replicas":[]}';
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['shards/s2', SHARD],
    ];
    for (let t = 0; t < 40; t++)
      events.push([`tenants/t${String(t).padStart(2, '0')}`, '{"shard":"s2","status":"active"}']);
    for (let i = 0; i < 2000; i++) events.push(['cache/ttl_seconds', String(60 + (i % 100))]);
    events.push(['shards/s2', moved]); // a failover by set-master
    for (let i = 0; i < 3; i++) events.push(['cache/ttl_seconds', String(60 + i)]);
    events.push(['shards/s2', null], ['tenants/zz-new', '{"shard":"s2","status":"active"}']);
    const { state } = await startWith(history(events));
    expect(state.snapshot.shards.get('s2')?.master).toEqual({ host: '127.0.0.1', port: 3399 });
    expect(enforced(state)).toEqual(enforced(runningThrough(events)));
  });

  it('takes the last delete of a shard deleted, re-created and deleted again (review)', async () => {
    const recreated = '{"master":{"host":"127.0.0.1","port":3399},"replicas":[]}';
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['shards/s2', SHARD],
      ['tenants/b-old', '{"shard":"s2","status":"active"}'],
      ['tenants/c-other', '{"shard":"s2","status":"active"}'],
    ];
    for (let i = 0; i < 30; i++) events.push(['cache/ttl_seconds', String(60 + i)]);
    events.push(['shards/s2', null]);
    for (let i = 0; i < 30; i++) events.push(['cache/ttl_seconds', String(60 + i)]);
    events.push(['shards/s2', recreated], ['tenants/a-new', '{"shard":"s2","status":"active"}']);
    for (let i = 0; i < 30; i++) events.push(['cache/ttl_seconds', String(60 + i)]);
    events.push(['shards/s2', null]);
    const { state } = await startWith(history(events));
    expect(state.snapshot.shards.get('s2')?.master).toEqual({ host: '127.0.0.1', port: 3399 });
    expect(enforced(state)).toEqual(enforced(runningThrough(events)));
  });

  it('does not restore a version of a tenant the running instances refused: one naming a shard that did not exist (review)', async () => {
    const events: [string, string | null][] = [
      ['shards/s1', SHARD],
      ['shards/s2', SHARD],
      ['tenants/x', '{"shard":"s2","status":"active"}'],
      ['shards/s2', null],
      ['tenants/x', '{"shard":"typo","status":"active"}'],
      ['tenants/x', '{"shard":"s2","status":"readonly"}'],
    ];
    const { state } = await startWith(history(events));
    expect(state.snapshot.tenants.get('x')).toEqual({ shard: 's2', status: 'readonly' });
    expect(enforced(state)).toEqual(enforced(runningThrough(events)));
  });
});
