import { describe, expect, it } from 'vitest';
import { replicationPaused, replicationStopped } from './replication-stopped.js';

const DUPLICATE =
  "Could not execute Write_rows_v1 event on table shardgate.books; Duplicate entry 't1-b1' for key 'PRIMARY', Error_code: 1062; handler error HA_ERR_FOUND_DUPP_KEY";

/** a MariaDB `SHOW ALL SLAVES STATUS` row, both threads running */
const mariadb = (over: Record<string, unknown> = {}) => ({
  Connection_name: '',
  Slave_IO_Running: 'Yes',
  Slave_SQL_Running: 'Yes',
  Last_IO_Errno: 0,
  Last_IO_Error: '',
  Last_SQL_Errno: 0,
  Last_SQL_Error: '',
  ...over,
});

/** a MySQL 8.0.22+ `SHOW REPLICA STATUS` row, both threads running */
const mysql = (over: Record<string, unknown> = {}) => ({
  Channel_Name: '',
  Replica_IO_Running: 'Yes',
  Replica_SQL_Running: 'Yes',
  Last_IO_Errno: 0,
  Last_IO_Error: '',
  Last_SQL_Errno: 0,
  Last_SQL_Error: '',
  ...over,
});

describe('replicationStopped', () => {
  it('gives no reason for running threads, or for no replication at all', () => {
    expect(replicationStopped([mariadb()])).toBeUndefined();
    expect(replicationStopped([mysql()])).toBeUndefined();
    expect(replicationStopped([])).toBeUndefined();
  });

  it('names an SQL thread stopped by an error, its errno and text', () => {
    const reason = replicationStopped([
      mariadb({ Slave_SQL_Running: 'No', Last_SQL_Errno: 1062, Last_SQL_Error: DUPLICATE }),
    ]);
    expect(reason).toBe(`replication stopped: SQL thread error 1062: ${DUPLICATE}`);
  });

  it('reads the Replica_/Source_ spelling of MySQL 8.0.22+', () => {
    expect(
      replicationStopped([
        mysql({ Replica_SQL_Running: 'No', Last_SQL_Errno: 1032, Last_SQL_Error: 'row gone' }),
      ]),
    ).toBe('replication stopped: SQL thread error 1032: row gone');
  });

  it('names the connection of a multi-source replica (MariaDB) or the channel (MySQL)', () => {
    expect(
      replicationStopped([
        mariadb({ Connection_name: 'a' }),
        mariadb({
          Connection_name: 'b',
          Slave_SQL_Running: 'No',
          Last_SQL_Errno: 1062,
          Last_SQL_Error: 'dup',
        }),
      ]),
    ).toBe("replication stopped (connection 'b'): SQL thread error 1062: dup");
    expect(
      replicationStopped([
        mysql({ Channel_Name: 'c1', Replica_IO_Running: 'No', Last_IO_Errno: 13114, Last_IO_Error: 'x' }),
      ]),
    ).toBe("replication stopped (connection 'c1'): IO thread error 13114: x");
  });

  it('trims a long error text to about 200 characters, on one line', () => {
    const reason = replicationStopped([
      mariadb({ Slave_SQL_Running: 'No', Last_SQL_Errno: 1062, Last_SQL_Error: `a\nb ${'x'.repeat(500)}` }),
    ])!;
    expect(reason).toMatch(/^replication stopped: SQL thread error 1062: a b x+…$/);
    expect(reason.length).toBeLessThan(260);
  });

  it('names an IO thread that gave up with an error', () => {
    expect(
      replicationStopped([
        mariadb({ Slave_IO_Running: 'No', Last_IO_Errno: 1236, Last_IO_Error: 'binlog purged' }),
      ]),
    ).toBe('replication stopped: IO thread error 1236: binlog purged');
  });

  it('gives no reason for an IO thread still Connecting (retrying through a master outage), error or not', () => {
    expect(
      replicationStopped([
        mariadb({ Slave_IO_Running: 'Connecting', Last_IO_Errno: 2003, Last_IO_Error: "Can't connect" }),
      ]),
    ).toBeUndefined();
  });

  it('gives no reason for a STOP SLAVE made while the IO thread retried a connection error (its errno stays set)', () => {
    // a review: STOP SLAVE during a master outage leaves IO `No` with 2003, which read as given up
    expect(
      replicationStopped([
        mariadb({
          Slave_IO_Running: 'No',
          Slave_SQL_Running: 'No',
          Last_IO_Errno: 2003,
          Last_IO_Error: "Can't connect",
        }),
      ]),
    ).toBeUndefined();
  });

  it('gives no reason for a plain STOP SLAVE (threads stopped, errno 0)', () => {
    expect(
      replicationStopped([mariadb({ Slave_IO_Running: 'No', Slave_SQL_Running: 'No' })]),
    ).toBeUndefined();
  });

  it('gives no reason for an error an SQL thread has since got past (running again)', () => {
    expect(
      replicationStopped([
        mariadb({ Slave_SQL_Running: 'Yes', Last_SQL_Errno: 1062, Last_SQL_Error: 'old' }),
      ]),
    ).toBeUndefined();
  });

  it('reads text columns answered as bytes', () => {
    const bytes = (s: string) => new TextEncoder().encode(s);
    expect(
      replicationStopped([
        mariadb({ Slave_SQL_Running: bytes('No'), Last_SQL_Errno: '1062', Last_SQL_Error: bytes('dup') }),
      ]),
    ).toBe('replication stopped: SQL thread error 1062: dup');
  });
});

describe('replicationPaused', () => {
  it('names threads stopped without an error (STOP SLAVE), and nothing else', () => {
    expect(replicationPaused([mariadb({ Slave_IO_Running: 'No', Slave_SQL_Running: 'No' })])).toBe(
      'replication IO and SQL thread stopped without an error (STOP SLAVE); it falls behind until started',
    );
    expect(replicationPaused([mysql({ Replica_SQL_Running: 'No' })])).toBe(
      'replication SQL thread stopped without an error (STOP SLAVE); it falls behind until started',
    );
    // a client error the IO thread retried, then a STOP SLAVE: stopped by hand
    expect(
      replicationPaused([mariadb({ Connection_name: 'm2', Slave_IO_Running: 'No', Last_IO_Errno: 2003 })]),
    ).toContain("IO thread stopped (connection 'm2') without an error");
    // running, retrying its master, stopped on an error (replicationStopped's), or no row: none
    expect(replicationPaused([mariadb()])).toBeUndefined();
    expect(replicationPaused([mariadb({ Slave_IO_Running: 'Connecting' })])).toBeUndefined();
    expect(
      replicationPaused([
        mariadb({ Slave_SQL_Running: 'No', Last_SQL_Errno: 1062, Last_SQL_Error: DUPLICATE }),
      ]),
    ).toBeUndefined();
    expect(replicationPaused([])).toBeUndefined();
  });
});
