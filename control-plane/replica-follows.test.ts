import { describe, expect, it } from 'vitest';
import { followsMaster } from './replica-follows.js';

describe('followsMaster (a replica position contained in its master position read after it)', () => {
  it('MariaDB: a replica at or behind its master follows it', () => {
    expect(followsMaster('0-21-107', '0-21-107', 'mariadb')).toBe(true);
    expect(followsMaster('0-21-100', '0-21-107', 'mariadb')).toBe(true);
    // nothing applied yet: contained in anything
    expect(followsMaster('', '0-21-107', 'mariadb')).toBe(true);
    // a promoted master goes on in the same domain under its own server id
    expect(followsMaster('0-11-272', '0-12-280', 'mariadb')).toBe(true);
    expect(followsMaster('0-21-5,1-22-9', '1-22-9,0-21-6', 'mariadb')).toBe(true);
  });

  it('MariaDB: a replica ahead of the master in a domain, or in a domain the master lacks, does not', () => {
    // shard-1's replica against shard-2's master (the outside tester's case)
    expect(followsMaster('0-11-272', '0-21-107', 'mariadb')).toBe(false);
    expect(followsMaster('0-21-108', '0-21-107', 'mariadb')).toBe(false);
    expect(followsMaster('0-21-5,1-22-9', '0-21-5', 'mariadb')).toBe(false);
    expect(followsMaster('0-21-5', '', 'mariadb')).toBe(false);
  });

  it("MariaDB with the master's binlog state: a replica of another master whose numbers trail this one's does not", () => {
    // shard-2's replica (server 21's transactions) against shard-1's master, further along
    expect(followsMaster('0-21-107', '0-11-272', 'mariadb')).toBe(true); // numbers alone
    expect(followsMaster('0-21-107', '0-11-272', 'mariadb', '0-11-272')).toBe(false);
    // a promoted master's binlog holds the old master's transactions (log_slave_updates)
    expect(followsMaster('0-11-272', '0-12-280', 'mariadb', '0-11-272,0-12-280')).toBe(true);
    expect(followsMaster('', '0-12-280', 'mariadb', '0-12-280')).toBe(true);
    expect(followsMaster('0-11-272', '0-12-280', 'mariadb', 'junk')).toBeUndefined();
  });

  it("MySQL: a replica's own transactions (a UUID the master does not name) are left out", () => {
    const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const own = '5a33bc69-71ca-11e1-9e33-c80aa9429564';
    expect(followsMaster(`${a}:1-5,${own}:1-2`, `${a}:1-7`, 'mysql')).toBe(true);
  });

  it('MySQL: every interval of the replica is covered by the master', () => {
    const a = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
    const b = '4f22ab58-71ca-11e1-9e33-c80aa9429563';
    expect(followsMaster(`${a}:1-5`, `${a}:1-7`, 'mysql')).toBe(true);
    expect(followsMaster('', `${a}:1-7`, 'mysql')).toBe(true);
    expect(followsMaster(`${a}:1-8`, `${a}:1-7`, 'mysql')).toBe(false);
    // another master's transactions only
    expect(followsMaster(`${b}:1-9`, `${a}:1-7`, 'mysql')).toBe(false);
  });

  it('cannot say for text that is not a position of the flavour', () => {
    expect(followsMaster('junk', '0-21-107', 'mariadb')).toBeUndefined();
    expect(followsMaster('0-21-1', 'junk', 'mariadb')).toBeUndefined();
    expect(followsMaster('0-21-1', '0-21-2', 'mysql')).toBeUndefined();
  });
});
