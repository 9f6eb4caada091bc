import { describe, expect, it } from 'vitest';
import { ConfigState } from './config-state.js';
import { parseDbHosts, refusedServers } from './db-hosts.js';

const shard = (master: string, ...replicas: string[]) => {
  const server = (hp: string) => {
    const i = hp.lastIndexOf(':');
    return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) };
  };
  return { master: server(master), replicas: replicas.map((r) => ({ ...server(r), weight: 1 })) };
};

describe('SHARDGATE_DB_HOSTS', () => {
  it('allows a host on any port, a host:port on that port only, case-insensitively, IPv6 in brackets', () => {
    const p = parseDbHosts(' db-1.internal , 10.0.0.7:3306,[::1],[fd00::2]:3307');
    expect(p.text).toBe('db-1.internal,10.0.0.7:3306,[::1],[fd00::2]:3307');
    expect(p.allows('DB-1.internal', 1)).toBe(true);
    expect(p.allows('10.0.0.7', 3306)).toBe(true);
    expect(p.allows('10.0.0.7', 3307)).toBe(false);
    expect(p.allows('::1', 3306)).toBe(true);
    expect(p.allows('[fd00::2]', 3307)).toBe(true);
    expect(p.allows('fd00::2', 3306)).toBe(false);
    // never resolved: a name and its address are different servers
    expect(p.allows('10.0.0.8', 3306)).toBe(false);
  });

  it('refuses a list with a bad entry, naming it, and an empty one', () => {
    expect(() => parseDbHosts('db-1,db 2')).toThrow('"db 2" is not a host or host:port');
    expect(() => parseDbHosts('db-1:70000')).toThrow('"db-1:70000"');
    expect(() => parseDbHosts('::1')).toThrow('"::1"');
    expect(() => parseDbHosts(' , ')).toThrow('names no server');
  });

  it('names every refused server of a shard', () => {
    const p = parseDbHosts('127.0.0.1');
    expect(refusedServers(p, shard('127.0.0.1:3316', '127.0.0.1:3317'))).toBeUndefined();
    expect(refusedServers(undefined, shard('evil:3306'))).toBeUndefined();
    expect(refusedServers(p, shard('127.0.0.1:3316', '127.0.0.1:3317', 'evil:3306'))).toBe(
      'replica evil:3306 not in SHARDGATE_DB_HOSTS (127.0.0.1)',
    );
  });

  it('makes the config reject a shard that names another server, keeping its last good value', () => {
    const state = new ConfigState({ dbHosts: parseDbHosts('127.0.0.1') });
    const good = JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] });
    state.load([['shards/s1', good, 1]]);
    expect(state.rejected).toEqual([]);
    state.put(
      'shards/s1',
      JSON.stringify({
        master: { host: '127.0.0.1', port: 3316 },
        replicas: [{ host: '10.9.9.9', port: 3306, weight: 0 }],
      }),
      2,
    );
    expect(state.rejected).toEqual([
      {
        key: 'shards/s1',
        reason: 'replica 10.9.9.9:3306 not in SHARDGATE_DB_HOSTS (127.0.0.1); keeping last good value',
      },
    ]);
    expect(state.snapshot.shards.get('s1')?.replicas).toEqual([]);
    // a new shard naming another server never comes into force
    state.put('shards/s2', JSON.stringify({ master: { host: 'evil', port: 3306 }, replicas: [] }), 3);
    expect(state.snapshot.shards.has('s2')).toBe(false);
  });
});
