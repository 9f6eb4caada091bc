import { describe, expect, it } from 'vitest';
import { UserError } from '../ctl-errors.js';
import type { PrefixRead } from '../prefix-read.js';
import { idAfterRemoval, pickShard } from './tenants.js';

const shard = '{"master":{"host":"127.0.0.1","port":3316}}';
const readOf = (entries: Record<string, string>): PrefixRead => ({
  revision: 9,
  entries: new Map(Object.entries(entries)),
  mods: new Map(),
});
const tenantsOn = (id: string, n: number) =>
  Object.fromEntries(Array.from({ length: n }, (_, i) => [`tenants/${id}-t${i}`, `{"shard":"${id}"}`]));

describe('pickShard (tenants create without --shard)', () => {
  const shards = { 'shards/s1': shard, 'shards/s2': shard, 'shards/s3': shard };

  it('takes the placement shard with the fewest tenants, the first on a tie', () => {
    const read = readOf({
      ...shards,
      ...tenantsOn('s1', 1),
      ...tenantsOn('s3', 2),
      placement: '{"strategy":"least-tenants","shards":["s3","s1"]}',
    });
    expect(pickShard(read, '/p/')).toBe('s1');
    expect(
      pickShard(readOf({ ...shards, placement: '{"strategy":"least-tenants","shards":["s2","s1"]}' }), '/p/'),
    ).toBe('s2');
  });

  it('with no placement key, picks among every shard', () => {
    expect(pickShard(readOf({ ...shards, ...tenantsOn('s1', 1) }), '/p/')).toBe('s2');
  });

  it('refuses a placement the schema rejects instead of picking from every shard', () => {
    for (const placement of [
      '{"strategy":"round-robin","shards":["s1"]}',
      '{"strategy":"least-tenants","shards":["s1","gone"]}',
      'not json',
    ]) {
      const read = readOf({ ...shards, placement });
      expect(() => pickShard(read, '/p/'), placement).toThrow(UserError);
      expect(() => pickShard(read, '/p/'), placement).toThrow(
        /^\/p\/placement is rejected by the config schema \(.+\); the API instances keep its last good value, .* fix placement \(`config apply`\) or pass --shard$/,
      );
    }
  });
});

describe('idAfterRemoval (what tenants remove says of the id)', () => {
  it('says the id is not free when the shard holds its rows, and names them', () => {
    const line = idAfterRemoval('acme', 'shard-1', { members: 2, books: 1, loans: 0 });
    expect(line).toMatch(
      /^the id acme is not free: shard shard-1 still holds its rows \(2 member\(s\), 1 book\(s\), 0 loan\(s\)\)/,
    );
    expect(line).toContain('unless --adopt-rows');
  });

  it('says it may not be free when the rows could not be checked', () => {
    const line = idAfterRemoval('acme', 'shard-1', undefined);
    expect(line).toMatch(/^the id acme may not be free: its rows were not checked/);
    expect(line).not.toContain('is not free');
  });

  it("says why the rows could not be counted in its own line, not in create's words", () => {
    const line = idAfterRemoval('acme', 'shard-1', {
      unchecked: 'no database password (SHARDGATE_DB_PASSWORD is not set)',
    });
    expect(line).toMatch(
      /^the id acme may not be free: its rows were not checked \(no database password \(SHARDGATE_DB_PASSWORD is not set\)\); a tenant created with it/,
    );
    expect(line).not.toContain('this tenant gets');
  });

  it('says create refuses the id on that shard also when it cannot count the rows, once the removal is recorded', () => {
    const line = idAfterRemoval('acme', 'shard-1', undefined, true);
    expect(line).toContain(
      '`tenants create` of it on shard shard-1 refuses it while the rows are there or cannot be counted, unless --adopt-rows',
    );
    expect(idAfterRemoval('acme', 'shard-1', undefined)).toContain(
      '`tenants create` refuses it while the rows are there, unless --adopt-rows',
    );
  });

  it('does not call the id taken when the shard holds none of its rows', () => {
    // before: "the id … is not free" after every removal, rows or none
    const line = idAfterRemoval('acme', 'shard-1', { members: 0, books: 0, loans: 0 });
    expect(line).toBe(
      'shard shard-1 holds no member, book or loan of tenant acme: a tenant created with this id there starts empty',
    );
    expect(line).not.toContain('not free');
  });
});
