import { describe, expect, it, vi } from 'vitest';
import { envSchema } from '../env.js';
import { ConfigState, foldChanges } from './config-state.js';
import { BARRIER_KEY, CACHE_EPOCH_KEY, parseConfigKey, tenantCacheEpochKey } from './schema.js';

// parseConfigKey itself, counted: a change must parse only the values that changed
vi.mock('./schema.js', async (original) => {
  const schema = await original<typeof import('./schema.js')>();
  return { ...schema, parseConfigKey: vi.fn(schema.parseConfigKey) };
});

const shard = (port: number) => JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [] });

describe('ConfigState', () => {
  it('applies valid values and falls back to built-in defaults for absent keys', () => {
    const s = new ConfigState();
    s.load([
      ['breakers/default/failure_threshold', '3', 5],
      ['breakers/redis/failure_threshold', '7', 6],
      ['cache/enabled', 'false', 7],
    ]);
    expect(s.snapshot.breakers.redis.failure_threshold).toBe(7);
    expect(s.snapshot.breakers['mysql-master'].failure_threshold).toBe(3);
    expect(s.snapshot.breakers['mysql-master'].call_timeout_ms).toBe(2000);
    expect(s.snapshot.cache).toEqual({
      enabled: false,
      ttlSeconds: 60,
      nearMaxEntries: 0,
      epoch: 0,
      tenantEpochs: new Map(),
    });
    expect(s.snapshot.mail).toEqual({ outboxRetentionHours: 168 });
    expect(s.snapshot.revision).toBe(7);
    expect(s.rejected).toEqual([]);
  });

  it("rejects a shard whose database is one of the server's own schemas, keeping the last good value", () => {
    const s = new ConfigState();
    const at = (database: string) =>
      JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [], database });
    s.load([['shards/s1', at('shardgate'), 5]]);
    for (const [i, database] of ['mysql', 'INFORMATION_SCHEMA', 'performance_schema', 'sys'].entries()) {
      s.put('shards/s1', at(database), 6 + i);
      expect(s.snapshot.shards.get('s1')?.database, database).toBe('shardgate');
      expect(s.rejected.find((r) => r.key === 'shards/s1')?.reason, database).toContain(
        'names a schema of the server itself',
      );
    }
    s.put('shards/s1', at('library_2'), 20);
    expect(s.snapshot.shards.get('s1')?.database).toBe('library_2');
    expect(s.rejected).toEqual([]);
  });

  it('takes the cache epoch from runtime/cache_epoch without moving the config revision', () => {
    const s = new ConfigState();
    s.load([['cache/enabled', 'true', 7]]);
    const changes = s.put(CACHE_EPOCH_KEY, '1900000000000123', 9);
    expect(changes).toEqual([{ key: CACHE_EPOCH_KEY, old: undefined, new: '1900000000000123' }]);
    expect(s.snapshot.cache.epoch).toBe(1_900_000_000_000_123);
    expect(s.snapshot.revision).toBe(7);
    s.put(CACHE_EPOCH_KEY, '-1', 10);
    expect(s.snapshot.cache.epoch).toBe(1_900_000_000_000_123);
    expect(s.rejected.map((r) => r.key)).toEqual([CACHE_EPOCH_KEY]);
  });

  it("takes a tenant's own cache epoch from runtime/tenant_cache_epoch/<id> without moving the config revision", () => {
    for (const incremental of [true, false]) {
      const s = new ConfigState({ incremental });
      s.load([
        ['cache/enabled', 'true', 7],
        [tenantCacheEpochKey('t0'), '5', 8],
      ]);
      expect([...s.snapshot.cache.tenantEpochs]).toEqual([['t0', 5]]);
      const before = s.snapshot.cache;
      s.put(tenantCacheEpochKey('t1'), '1900000000000123', 9);
      expect(s.snapshot.cache.tenantEpochs.get('t1')).toBe(1_900_000_000_000_123);
      expect(before.tenantEpochs.get('t1')).toBeUndefined(); // a snapshot handed out stays as it was
      expect(s.snapshot.cache.epoch).toBe(0);
      expect(s.snapshot.revision).toBe(7);
      // an invalid value keeps the last good one; an invalid id is no tenant's
      s.put(tenantCacheEpochKey('t1'), 'soon', 10);
      s.put(tenantCacheEpochKey('T_1'), '3', 11);
      s.put(`${tenantCacheEpochKey('t1')}/x`, '3', 12);
      expect(s.snapshot.cache.tenantEpochs.get('t1')).toBe(1_900_000_000_000_123);
      expect(s.rejected.map((r) => r.key)).toEqual([
        tenantCacheEpochKey('T_1'),
        tenantCacheEpochKey('t1'),
        `${tenantCacheEpochKey('t1')}/x`,
      ]);
      s.delete(tenantCacheEpochKey('t1'), 13);
      expect([...s.snapshot.cache.tenantEpochs]).toEqual([['t0', 5]]);
      expect(s.snapshot.revision).toBe(7);
    }
  });

  it('moves the config revision on runtime/barrier, and a fresh full read reports it, after the delete of a tenant before it', () => {
    const barrier = JSON.stringify({ by: 'tenants delete-rows t1 --shard s1', at: '2026-12-06T05:00:00Z' });
    const watching = new ConfigState();
    watching.load([
      ['cache/enabled', 'true', 4],
      ['tenants/t1', '{"shard":"s1","status":"active"}', 5],
    ]);
    watching.delete('tenants/t1', 8);
    expect(watching.put(BARRIER_KEY, barrier, 9)).toEqual([
      { key: BARRIER_KEY, old: undefined, new: barrier },
    ]);
    expect(watching.snapshot.revision).toBe(9);
    expect(watching.rejected).toEqual([]);
    // started after both: the delete left no key, the barrier is one
    const fresh = new ConfigState();
    fresh.load([
      ['cache/enabled', 'true', 4],
      [BARRIER_KEY, barrier, 9],
    ]);
    expect(fresh.snapshot.revision).toBe(9);
    expect(fresh.snapshot.tenants.has('t1')).toBe(false);
    // a value of another shape is rejected, as any
    watching.put(BARRIER_KEY, '{"by":"x"}', 10);
    expect(watching.rejected.map((r) => r.key)).toEqual([BARRIER_KEY]);
    // rejected, it still moves the revision (what a build that does not know the key reports)
    expect(watching.snapshot.revision).toBe(10);
  });

  it('rejects an invalid value, reports it, and keeps the last good one', () => {
    const s = new ConfigState();
    s.load([['breakers/redis/failure_threshold', '7', 2]]);
    const changes = s.put('breakers/redis/failure_threshold', 'banana', 3);
    expect(changes).toEqual([]);
    expect(s.snapshot.breakers.redis.failure_threshold).toBe(7);
    expect(s.rejected).toEqual([
      {
        key: 'breakers/redis/failure_threshold',
        reason: expect.stringContaining('written as plain decimal digits'),
      },
    ]);
    s.put('breakers/redis/failure_threshold', '9', 4);
    expect(s.snapshot.breakers.redis.failure_threshold).toBe(9);
    expect(s.rejected).toEqual([]);
  });

  it('names each reason once: a value past the range and past the safe integers', () => {
    const s = new ConfigState();
    s.put('cache/ttl_seconds', '99999999999999999999999', 2);
    expect(s.rejected).toEqual([
      { key: 'cache/ttl_seconds', reason: 'must be a whole number from 1 to 86400' },
    ]);
  });

  it.each([
    ['breakers/redis/failure_threshold', '0'],
    ['breakers/redis/failure_threshold', '1.5'],
    ['breakers/redis/failure_threshold', '12abc'],
    ['breakers/nosuch/failure_threshold', '3'],
    ['breakers/redis/nosuch', '3'],
    ['cache/enabled', 'yes'],
    ['cache/ttl_seconds', '-1'],
    ['cache/near_max_entries', '-5'],
    ['cache/near_max_entries', '1000001'],
    ['mail/outbox_retention_hours', '-1'],
    ['mail/outbox_retention_hours', '87601'],
    ['mail/outbox_retention_hours', '1.5'],
    ['lb/weights/api-1', '257'],
    ['shards/s1', '{"master":{"host":"h","port":1},"replicas":[{"host":"H","port":1}]}'],
    [
      'shards/s1',
      '{"master":{"host":"h","port":1},"replicas":[{"host":"r","port":2},{"host":"r","port":2,"weight":2}]}',
    ],
    ['lb/weights/-api', '1'],
    ['lb/weights/api 1', '1'],
    ['shards/Bad_Id', shard(1)],
    ['shards/s1', '{"master":{"host":"h","port":70000}}'],
    // a database client connects to none of these (an IPv6 address is written bare, "::1")
    ['shards/s1', '{"master":{"host":"127.0.0.1 ","port":3316}}'],
    ['shards/s1', '{"master":{"host":"[::1]","port":3316}}'],
    // a host:port in host (one colon, or a name with colons): the port belongs in "port"
    ['shards/s1', '{"master":{"host":"127.0.0.1:3316","port":3316}}'],
    ['shards/s1', '{"master":{"host":"h","port":1},"replicas":[{"host":"db-r:3317","port":3317}]}'],
    ['shards/s1', '{"master":{"host":"db.local:3316:1","port":3316}}'],
    ['shards/s1', '{"master":{"host":"10.0.0.5:3316:1","port":3316}}'],
    ['shards/s1', '{"master":{"host":"127.0.0.1::3316","port":3316}}'],
    ['shards/s1', '{"master":{"host":"12345::1","port":3316}}'],
    ['shards/s1', '{"master":{"host":"1:2:3:4:5:6:7:8:9","port":3316}}'],
    ['shards/s1', '{"master":{"host":"fe80::1%","port":3316}}'],
    ['shards/s1', '{"master":{"host":"h","port":1},"replicas":[{"host":"db/x","port":2}]}'],
    ['shards/s1', '{"master":{"host":"h","port":1},"extra":1}'],
    ['shards/s1', 'not json'],
    ['shards/s1', '[1,2]'],
    // a passwordEnv that could name any variable would hand it to whoever writes etcd
    ['shards/s1', '{"master":{"host":"h","port":1},"passwordEnv":"SHARDGATE_JWT_SECRET"}'],
    ['shards/s1', '{"master":{"host":"h","port":1},"passwordEnv":"SHARDGATE_DB_PASSWORD"}'],
    ['placement', '{"strategy":"random","shards":["s1"]}'],
    ['nosuch/key', '1'],
  ])('rejects %s = %s', (key, value) => {
    const s = new ConfigState();
    s.load([[key, value, 1]]);
    expect(s.rejected.map((r) => r.key)).toEqual([key]);
  });

  it('takes a bare IPv6 address as a host and names "port" when a host carries one', () => {
    for (const host of [
      '::1',
      '2001:db8::7',
      '::ffff:127.0.0.1',
      'fe80::1%eth0',
      'db-1.internal',
      '10.0.0.5',
    ]) {
      expect(parseConfigKey('shards/s1', JSON.stringify({ master: { host, port: 3316 } })).ok, host).toBe(
        true,
      );
    }
    const refused = parseConfigKey('shards/s1', '{"master":{"host":"127.0.0.1:3316","port":3316}}');
    expect(refused.ok).toBe(false);
    expect(JSON.stringify(refused)).toContain('put the port in \\"port\\"');
  });

  it('refuses a tenant display name that is not one printable line (it goes into mail headers)', () => {
    expect(parseConfigKey('tenants/t1', '{"shard":"s1","name":"Acme Library"}').ok).toBe(true);
    for (const name of [
      'two\\nlines',
      'bell\\u0007',
      'sep\\u2028x',
      'gnp\\u202Eexe',
      'Caf\\u200Ee',
      'Ann\\u200B',
      'x\\udb40\\udc41',
      'x\\ue000',
      '   ',
    ])
      expect(parseConfigKey('tenants/t1', `{"shard":"s1","name":"${name}"}`)).toMatchObject({
        ok: false,
        reason: expect.stringMatching(/control characters|bidi|tag characters|private-use|invisible|blank/),
      });
  });

  it('reads a lone surrogate in a tenant name as U+FFFD (utf8mb4 cannot store one: every mail of the tenant failed)', () => {
    expect(parseConfigKey('tenants/t1', '{"shard":"s1","name":"a\\ud800b\\udfff"}')).toMatchObject({
      ok: true,
      parsed: { value: { name: 'a\ufffdb\ufffd' } },
    });
    // a pair is one character, kept
    expect(parseConfigKey('tenants/t1', '{"shard":"s1","name":"a\\ud83d\\ude00"}')).toMatchObject({
      ok: true,
      parsed: { value: { name: 'a😀' } },
    });
  });

  it('rejects a value over 262,144 characters or nested over 16 deep unparsed, and cuts every long reason at 500', () => {
    const deep = `{"shard":"s1","x":${'['.repeat(700_000)}${']'.repeat(700_000)}}`;
    expect(parseConfigKey('tenants/t1', deep)).toEqual({
      ok: false,
      reason: 'is 1,400,019 characters long; a value holds at most 262,144',
    });
    // (before: parsed, 1.7 s of JSON.parse and the duplicate-key scan, then "Unrecognized key")
    const nested = `{"shard":"s1","x":${'['.repeat(100_000)}${']'.repeat(100_000)}}`;
    expect(parseConfigKey('tenants/t1', nested)).toEqual({
      ok: false,
      reason: 'nests deeper than 16 levels of arrays and objects',
    });
    // brackets inside a string (escaped quotes too) are no nesting
    expect(parseConfigKey('tenants/t1', `{"shard":"s1","name":"${'[{'.repeat(40)} \\" ]"}`)).toMatchObject({
      ok: true,
    });
    // the longest valid value passes: a placement of 1,000 ids of 63 characters (a review)
    const ids = Array.from({ length: 1000 }, (_, i) => `s${String(i).padStart(62, '0')}`);
    const placement = JSON.stringify({ strategy: 'least-tenants', shards: ids });
    expect(placement.length).toBeGreaterThan(65_536);
    expect(parseConfigKey('placement', placement)).toMatchObject({ ok: true });
    // a reason echoing the value or the key is cut as well
    const twice = parseConfigKey(
      'tenants/t1',
      `{"shard":"s1","${'k'.repeat(30_000)}":1,"${'k'.repeat(30_000)}":2}`,
    );
    expect((twice as { reason: string }).reason).toMatch(/^k+…$/);
    expect((twice as { reason: string }).reason.length).toBe(500);
    expect(
      (parseConfigKey(`breakers/${'x'.repeat(10_000)}/failure_threshold`, '5') as { reason: string }).reason,
    ).toHaveLength(500);
    const fields = Array.from({ length: 3000 }, (_, i) => `"k${i}":1`).join(',');
    const refused = parseConfigKey('tenants/t1', `{"shard":"s1",${fields}}`);
    expect(refused).toMatchObject({
      ok: false,
      reason: expect.stringMatching(/^Unrecognized keys: "k0", .*…$/),
    });
    expect((refused as { reason: string }).reason.length).toBe(500);
  });

  it('ignores blanks around a boolean as around a number (a newline from echo | etcdctl put)', () => {
    expect(parseConfigKey('cache/enabled', ' false\n')).toMatchObject({ ok: true, parsed: { value: false } });
    expect(parseConfigKey('cache/ttl_seconds', ' 30\n')).toMatchObject({ ok: true, parsed: { value: 30 } });
    expect(parseConfigKey('cache/enabled', 'False')).toMatchObject({ ok: false });
  });

  it('takes a weight for every instance id an instance may start with (a hostname with capitals and dots)', () => {
    const s = new ConfigState();
    s.load([
      ['lb/weights/API.Host-1', '2', 1],
      ['lb/weights/vm.local', '0', 2],
    ]);
    expect(s.rejected).toEqual([]);
    expect(envSchema.parse({ SHARDGATE_INSTANCE_ID: 'API.Host-1' }).SHARDGATE_INSTANCE_ID).toBe('API.Host-1');
  });

  it('takes an instance url of scheme, host and port only (shardgate-ctl fetches it)', () => {
    const entry = (url: string) =>
      parseConfigKey('instances/api-1', JSON.stringify({ url, configRevision: 1, startedAt: 'now' })).ok;
    for (const good of [
      'http://127.0.0.1:8101',
      'https://api-1.example:443',
      'http://[::1]:8102',
      'http://x',
    ])
      expect([good, entry(good)]).toEqual([good, true]);
    for (const bad of [
      'file:///etc/passwd',
      'http://user:pw@10.0.0.1:80',
      'http://169.254.169.254/latest/meta-data',
      'http://127.0.0.1:8101/',
      'http://127.0.0.1:8101?x=1',
      'http://127.0.0.1:8101#x',
      'not a url',
      `http://${'a'.repeat(2050)}`,
    ])
      expect([bad, entry(bad)]).toEqual([bad, false]);
  });

  it('takes a passwordEnv of the form SHARDGATE_DB_PASSWORD_<SUFFIX>', () => {
    const s = new ConfigState();
    s.load([['shards/s1', '{"master":{"host":"h","port":1},"passwordEnv":"SHARDGATE_DB_PASSWORD_S1"}', 1]]);
    expect(s.rejected).toEqual([]);
    expect(s.snapshot.shards.get('s1')?.passwordEnv).toBe('SHARDGATE_DB_PASSWORD_S1');
  });

  it('rejects a shard whose passwordEnv names a variable the process lacks, naming it; the last good value stays', () => {
    const withEnv = (env: string, port: number) =>
      JSON.stringify({ master: { host: '127.0.0.1', port }, replicas: [], passwordEnv: env });
    const s = new ConfigState({
      processEnv: { SHARDGATE_DB_PASSWORD_S1: 'pw', SHARDGATE_DB_PASSWORD_EMPTY: '' },
    });
    s.load([
      ['shards/s1', withEnv('SHARDGATE_DB_PASSWORD_S1', 3316), 1],
      ['shards/s2', withEnv('SHARDGATE_DB_PASSWORD_EMPTY', 3326), 2],
      ['shards/s3', withEnv('SHARDGATE_DB_PASSWORD_NOPE', 3336), 3],
    ]);
    expect(s.rejected).toEqual([
      {
        key: 'shards/s3',
        reason: "passwordEnv SHARDGATE_DB_PASSWORD_NOPE is not set in this process's environment",
      },
    ]);
    expect([...s.snapshot.shards.keys()].sort()).toEqual(['s1', 's2']);
    // a typo put over a good value: rejected, the good one stays in force
    s.put('shards/s1', withEnv('SHARDGATE_DB_PASSWORD_S1X', 3317), 4);
    expect(s.rejected).toContainEqual({
      key: 'shards/s1',
      reason:
        "passwordEnv SHARDGATE_DB_PASSWORD_S1X is not set in this process's environment; keeping last good value",
    });
    expect(s.snapshot.shards.get('s1')?.master.port).toBe(3316);
    // without an environment to judge by (shardgate-ctl), not checked
    const unchecked = new ConfigState();
    unchecked.load([['shards/s3', withEnv('SHARDGATE_DB_PASSWORD_NOPE', 3336), 1]]);
    expect(unchecked.rejected).toEqual([]);
  });

  it('rejects a placement that lists a shard twice', () => {
    const s = new ConfigState();
    s.load([
      ['shards/s1', shard(3316), 1],
      ['placement', '{"strategy":"least-tenants","shards":["s1","s1"]}', 2],
    ]);
    expect(s.rejected).toEqual([{ key: 'placement', reason: 'shards: lists a shard more than once' }]);
  });

  it('rejects a tenant on an unknown shard until the shard exists', () => {
    const s = new ConfigState();
    s.load([['tenants/acme', '{"shard":"s1"}', 1]]);
    expect(s.snapshot.tenants.size).toBe(0);
    expect(s.rejected[0]).toMatchObject({ key: 'tenants/acme', reason: 'unknown shard "s1"' });
    s.put('shards/s1', shard(3316), 2);
    expect(s.snapshot.tenants.get('acme')).toEqual({ shard: 's1', status: 'active' });
    expect(s.rejected).toEqual([]);
  });

  it('keeps a deleted shard that still holds tenants', () => {
    const s = new ConfigState();
    s.load([
      ['shards/s1', shard(3316), 1],
      ['tenants/acme', '{"shard":"s1","status":"readonly"}', 2],
    ]);
    s.delete('shards/s1');
    expect(s.snapshot.shards.has('s1')).toBe(true);
    expect(s.rejected[0]?.reason).toContain('tenant(s) still on it');
    s.delete('tenants/acme');
    expect(s.snapshot.shards.has('s1')).toBe(false);
  });

  it('while a deleted shard is kept, only a change of a tenant on it derives everything again', () => {
    const s = new ConfigState();
    s.load([
      ['shards/s1', shard(3316), 1],
      ['shards/s2', shard(3326), 2],
      ['tenants/on', '{"shard":"s1","status":"active"}', 3],
      ['tenants/off', '{"shard":"s2","status":"active"}', 4],
    ]);
    s.delete('shards/s1', 5);
    const whole = vi.spyOn(s as unknown as { recompute: () => unknown }, 'recompute');
    // other tenants, new ones, instances: the change alone (each did a whole derivation before)
    s.put('tenants/off', '{"shard":"s2","status":"readonly"}', 6);
    s.put('tenants/new', '{"shard":"s2","status":"active"}', 7);
    s.put('tenants/refused', '{"shard":"s1","status":"active"}', 8);
    s.put('instances/api-1', '{"url":"http://x","configRevision":8,"startedAt":"now"}', 9);
    expect(whole).not.toHaveBeenCalled();
    expect(s.snapshot.tenants.has('refused')).toBe(false);
    // the tenant on the kept shard moves off: the whole, which lets the shard go
    s.put('tenants/on', '{"shard":"s2","status":"active"}', 10);
    expect(whole).toHaveBeenCalledTimes(1);
    expect(s.snapshot.shards.has('s1')).toBe(false);
  });

  it('takes no new tenant onto a deleted shard kept for its tenants; those still on it may change', () => {
    const s = new ConfigState();
    s.load([
      ['shards/s1', shard(3316), 1],
      ['shards/s2', shard(3326), 2],
      ['tenants/acme', '{"shard":"s1","status":"active"}', 3],
      ['tenants/beta', '{"shard":"s2","status":"active"}', 4],
    ]);
    s.delete('shards/s1', 5);
    expect(s.snapshot.shards.has('s1')).toBe(true);
    const refusal = 'shard "s1" is deleted (kept only for the tenants still on it)';
    // a new tenant, and one on another shard, may not name it; neither holds it
    s.put('tenants/new', '{"shard":"s1","status":"active"}', 6);
    s.put('tenants/beta', '{"shard":"s1","status":"active"}', 7);
    expect(s.snapshot.tenants.has('new')).toBe(false);
    expect(s.snapshot.tenants.get('beta')?.shard).toBe('s2');
    expect(s.rejected).toEqual(
      expect.arrayContaining([
        { key: 'tenants/new', reason: refusal },
        { key: 'tenants/beta', reason: `${refusal}; keeping last good value` },
        { key: 'shards/s1', reason: 'deleted while 1 tenant(s) still on it; keeping it' },
      ]),
    );
    // nor may the placement, where new tenants go
    s.put('placement', '{"strategy":"least-tenants","shards":["s1","s2"]}', 7);
    expect(s.rejected.find((r) => r.key === 'placement')?.reason).toBe(
      'shard(s) "s1" deleted (kept only for the tenants still on them)',
    );
    expect(s.snapshot.placement).toBeUndefined();
    s.delete('placement', 7);
    // the tenant on it may change its status (a move off it makes it readonly first)
    s.put('tenants/acme', '{"shard":"s1","status":"readonly"}', 8);
    expect(s.snapshot.tenants.get('acme')).toEqual({ shard: 's1', status: 'readonly' });
    // once it is off the shard, the shard goes, though the refused entry still names it
    s.put('tenants/acme', '{"shard":"s2","status":"active"}', 9);
    s.put('cache/ttl_seconds', '30', 10);
    expect(s.snapshot.shards.has('s1')).toBe(false);
    expect(s.rejected.find((r) => r.key === 'tenants/new')?.reason).toBe('unknown shard "s1"');
    // and a shard deleted in the same change as a new tenant naming it is not kept for it
    const t = new ConfigState();
    t.load([['shards/s1', shard(3316), 1]]);
    t.apply([
      { type: 'put', key: 'tenants/late', value: '{"shard":"s1","status":"active"}', modRevision: 2 },
      { type: 'delete', key: 'shards/s1', revision: 3 },
    ]);
    expect(t.snapshot.shards.has('s1')).toBe(false);
    expect(t.snapshot.tenants.has('late')).toBe(false);
  });

  it('reports changes with old and new values', () => {
    const s = new ConfigState();
    s.load([['cache/ttl_seconds', '60', 1]]);
    expect(s.put('cache/ttl_seconds', '30', 2)).toEqual([{ key: 'cache/ttl_seconds', old: '60', new: '30' }]);
    expect(s.delete('cache/ttl_seconds')).toEqual([{ key: 'cache/ttl_seconds', old: '30', new: undefined }]);
  });

  it('does not count instance registrations in the config revision', () => {
    const s = new ConfigState();
    s.load([
      ['cache/ttl_seconds', '60', 10],
      ['instances/api-1', '{"url":"http://x","configRevision":10,"startedAt":"now"}', 11],
    ]);
    expect(s.snapshot.revision).toBe(10);
    expect(s.snapshot.instances.get('api-1')?.configRevision).toBe(10);
  });

  it('moves the config revision forward on a delete, and never back, even after a full re-read', () => {
    const s = new ConfigState();
    s.load([
      ['cache/enabled', 'true', 4],
      ['cache/ttl_seconds', '30', 9],
    ]);
    expect(s.snapshot.revision).toBe(9);
    // the key holding the highest mod_revision goes: the revision is the delete's, not 4
    s.delete('cache/ttl_seconds', 12);
    expect(s.snapshot.revision).toBe(12);
    expect(s.snapshot.cache.ttlSeconds).toBe(60);
    // an instance registration's delete does not move it
    s.delete('instances/api-2', 13);
    expect(s.snapshot.revision).toBe(12);
    // a re-read (after compaction) sees only cache/enabled at 4: still 12
    s.load([['cache/enabled', 'true', 4]]);
    expect(s.snapshot.revision).toBe(12);
    s.put('cache/enabled', 'false', 15);
    expect(s.snapshot.revision).toBe(15);
  });

  it('parses only the values that changed, however many keys the directory holds', () => {
    const s = new ConfigState();
    const tenant = (shardId: string) => JSON.stringify({ shard: shardId, name: 'T', status: 'active' });
    s.load([
      ['shards/s1', shard(3306), 1],
      ...Array.from({ length: 500 }, (_, i): [string, string, number] => [
        `tenants/t${i}`,
        tenant('s1'),
        i + 2,
      ]),
    ]);
    const parses = vi.mocked(parseConfigKey);
    parses.mockClear();
    s.put('tenants/new', tenant('s1'), 600);
    expect(parses.mock.calls).toEqual([['tenants/new', tenant('s1')]]);
    parses.mockClear();
    // an invalid value is parsed (and rejected) once; the old good value stays
    s.put('tenants/t7', '{', 601);
    expect(parses.mock.calls).toEqual([['tenants/t7', '{']]);
    expect(s.snapshot.tenants.size).toBe(501);
    expect(s.rejected.map((r) => r.key)).toEqual(['tenants/t7']);
    parses.mockClear();
    // deleting the shard is refused while its tenants hold it: decided without parsing them again
    s.delete('shards/s1');
    expect(parses).not.toHaveBeenCalled();
    expect(s.snapshot.shards.has('s1')).toBe(true);
    expect(s.snapshot.tenants.size).toBe(501);
  });
});

describe('foldChanges', () => {
  it('keeps per key the first old and the last new value, and drops a key that ended where it began', () => {
    expect(
      foldChanges(
        [
          { key: 'a', old: undefined, new: '1' },
          { key: 'b', old: 'x', new: 'y' },
        ],
        [
          { key: 'a', old: '1', new: '2' },
          { key: 'b', old: 'y', new: 'x' },
          { key: 'c', old: '3', new: undefined },
        ],
      ),
    ).toEqual([
      { key: 'a', old: undefined, new: '2' },
      { key: 'c', old: '3', new: undefined },
    ]);
  });
});

describe('ConfigState, changes of tenants, move marks and instances alone', () => {
  const plain = (s: ConfigState) => ({
    ...s.snapshot,
    shards: [...s.snapshot.shards].sort(),
    tenants: [...s.snapshot.tenants].sort(),
    moving: [...s.snapshot.moving].sort(),
    instances: [...s.snapshot.instances].sort(),
    lbWeights: [...s.snapshot.lbWeights].sort(),
    rejected: s.rejected,
  });

  it('end where deriving everything on every change ends, change for change (a random walk)', () => {
    const local = new ConfigState();
    const whole = new ConfigState({ incremental: false });
    let seed = 7;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    const values = [
      '{"shard":"shard-1","status":"active"}',
      '{"shard":"shard-2","status":"readonly"}',
      '{"shard":"shard-9","status":"active"}', // unknown shard: rejected
      '{"shard":"shard-1","status":"paused"}', // invalid status: rejected
      'not json',
    ];
    const start: [string, string, number][] = [
      ['shards/shard-1', shard(3316), 1],
      ['shards/shard-2', shard(3326), 2],
      ['tenants/a', values[0]!, 3],
    ];
    local.load(start);
    whole.load(start);
    for (let rev = 10; rev < 600; rev++) {
      const kind = random(10);
      const id = `t${random(6)}`;
      let batch: Parameters<ConfigState['apply']>[0];
      if (kind < 5)
        batch = [
          { type: 'put', key: `tenants/${id}`, value: values[random(values.length)]!, modRevision: rev },
        ];
      else if (kind < 6) batch = [{ type: 'delete', key: `tenants/${id}`, revision: rev }];
      else if (kind < 7)
        batch = [
          {
            type: 'put',
            key: `moving/${id}`,
            value: JSON.stringify({ since: new Date(rev * 1000).toISOString() }),
            modRevision: rev,
          },
        ];
      else if (kind < 8)
        batch = [
          {
            type: 'put',
            key: `instances/api-${random(2)}`,
            value: JSON.stringify({
              url: 'http://127.0.0.1:8101',
              configRevision: rev,
              startedAt: new Date(0).toISOString(),
            }),
            modRevision: rev,
          },
        ];
      else if (kind < 9)
        // a batch, as one watch response of a transaction carries
        batch = [
          { type: 'put', key: `tenants/${id}`, value: values[random(2)]!, modRevision: rev },
          { type: 'delete', key: `moving/${id}`, revision: rev },
          { type: 'put', key: CACHE_EPOCH_KEY, value: String(rev), modRevision: rev },
        ];
      // now and then a shard deleted with tenants on it (kept), and put back
      else
        batch = [
          random(2) === 0
            ? { type: 'delete', key: 'shards/shard-2', revision: rev }
            : { type: 'put', key: 'shards/shard-2', value: shard(3326), modRevision: rev },
        ];
      const a = local.apply(batch);
      const b = whole.apply(batch);
      expect(new Set(a.map((c) => JSON.stringify(c))), `change ${rev}`).toEqual(
        new Set(b.map((c) => JSON.stringify(c))),
      );
      expect(plain(local), `after change ${rev}`).toEqual(plain(whole));
    }
  });

  it('leave a snapshot handed out before as it was', () => {
    const s = new ConfigState();
    s.load([
      ['shards/shard-1', shard(3316), 1],
      ['tenants/a', '{"shard":"shard-1","status":"active"}', 2],
    ]);
    const before = s.snapshot;
    s.put('tenants/b', '{"shard":"shard-1","status":"active"}', 3);
    s.put(
      'instances/api-1',
      JSON.stringify({ url: 'http://x:1', configRevision: 3, startedAt: new Date(0).toISOString() }),
      4,
    );
    expect([...before.tenants.keys()]).toEqual(['a']);
    expect(before.instances.size).toBe(0);
    expect(before.revision).toBe(2);
    expect([...s.snapshot.tenants.keys()].sort()).toEqual(['a', 'b']);
    // an instance's registration does not move the config revision
    expect(s.snapshot.revision).toBe(3);
  });
});
