import { describe, expect, it } from 'vitest';
import {
  defaultReplicationStatusSql,
  flavourOfVersion,
  positionSql,
  replicationStatusSql,
  waitSql,
} from './flavour-sql.js';

describe('flavour SQL', () => {
  it("reads the flavour from the server's version text", () => {
    expect(flavourOfVersion('10.11.6-MariaDB-0+deb12u1-log')).toBe('mariadb');
    expect(flavourOfVersion('8.0.36')).toBe('mysql');
    expect(flavourOfVersion('')).toBe('mysql');
  });

  it("names each flavour's positions and wait", () => {
    expect(positionSql('mariadb', 'master')).toBe('SELECT @@GLOBAL.gtid_binlog_pos');
    expect(positionSql('mariadb', 'replica')).toBe('SELECT @@GLOBAL.gtid_slave_pos');
    expect(positionSql('mysql', 'master')).toBe('SELECT @@GLOBAL.gtid_executed');
    expect(positionSql('mysql', 'replica')).toBe('SELECT @@GLOBAL.gtid_executed');
    expect(waitSql('mariadb')).toBe('SELECT MASTER_GTID_WAIT(?, ?)');
    expect(waitSql('mysql')).toBe('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)');
    expect(replicationStatusSql('mariadb')).toBe('SHOW ALL SLAVES STATUS');
    expect(replicationStatusSql('mysql')).toBe('SHOW REPLICA STATUS');
    expect(defaultReplicationStatusSql('mariadb')).toBe('SHOW SLAVE STATUS');
    expect(defaultReplicationStatusSql('mysql')).toBe('SHOW REPLICA STATUS');
  });
});
