import { describe, expect, it } from 'vitest';
import { abandonReport, beforeCommit, waitSeen } from './mysql-node-set.js';

// the rows are what MariaDB 10.11's information_schema.PROCESSLIST showed for each case
describe('beforeCommit (whether interrupting the statement seen stops a write before its COMMIT)', () => {
  it('yes: a statement before the COMMIT, waiting on a row lock or on the global read lock', () => {
    for (const [STATE, INFO] of [
      ['Sending data', 'SELECT * FROM bo'],
      ['Updating', 'UPDATE books SET'],
      ['Update', 'INSERT INTO books'],
      ['Waiting for backup lock', 'INSERT INTO books'],
      ['starting', 'START TRANSACTION'],
    ] as const)
      expect(beforeCommit({ COMMAND: 'Query', STATE, INFO }), `${STATE} ${INFO}`).toBe(true);
  });

  it('no: idle (it ran all it received), or in its COMMIT, even one still waiting to begin', () => {
    expect(beforeCommit({ COMMAND: 'Sleep', STATE: '', INFO: null })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Commit', INFO: 'COMMIT' })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'query end', INFO: 'COMMIT' })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for backup lock', INFO: 'COMMIT' })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for commit lock', INFO: ' commit' })).toBe(false);
    expect(
      beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for semi-sync ACK from slave', INFO: 'COMMIT' }),
    ).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'starting', INFO: null })).toBe(false);
  });
});

describe('waitSeen (what a write abandoned at its call timeout was waiting for)', () => {
  const query = (STATE: string, TRX_STATE?: string | null) => ({
    COMMAND: 'Query',
    STATE,
    INFO: 'INSERT INTO books',
    TRX_STATE,
  });

  it('a row lock another transaction holds: its own wait', () => {
    expect(waitSeen(query('Updating', 'LOCK WAIT'))).toBe('row-lock');
    expect(waitSeen(query('Statistics', 'LOCK WAIT'))).toBe('row-lock');
  });

  it("a lock on its table another session holds or queued for (a DDL's metadata lock)", () => {
    expect(waitSeen(query('Waiting for table metadata lock', 'RUNNING'))).toBe('table-lock');
    expect(waitSeen(query('Waiting for table metadata lock'))).toBe('table-lock');
    expect(waitSeen(query('Waiting for table level lock', null))).toBe('table-lock');
  });

  it('a server-wide wait', () => {
    expect(waitSeen(query('Waiting for backup lock', null))).toBe('server-wide');
    expect(waitSeen(query('Waiting for global read lock', null))).toBe('server-wide');
    expect(waitSeen(query('Waiting for commit lock', null))).toBe('server-wide');
    // a lock on the whole database (DROP or ALTER DATABASE)
    expect(waitSeen(query('Waiting for schema metadata lock', null))).toBe('server-wide');
    expect(waitSeen(query('Waiting for semi-sync ACK from slave', 'RUNNING'))).toBe('server-wide');
  });

  it('unclear: a thread gone, idle or on its way out after a disconnected backup-lock wait', () => {
    expect(waitSeen(undefined)).toBe('unclear');
    // seen in the milliseconds after MariaDB ended such a wait (FLUSH TABLES WITH READ LOCK)
    expect(waitSeen({ COMMAND: 'Sleep', STATE: '', INFO: null, TRX_STATE: null })).toBe('unclear');
    expect(waitSeen(query('', null))).toBe('unclear');
    expect(waitSeen(query('Writing to net', null))).toBe('unclear');
    expect(waitSeen(query('Updating status', null))).toBe('unclear');
  });

  it('without the PROCESS privilege (no InnoDB state): by the PROCESSLIST state alone', () => {
    expect(waitSeen(query('Updating'))).toBe('row-lock');
    expect(waitSeen(query('Sending data'))).toBe('row-lock');
    expect(waitSeen(query('Waiting for backup lock'))).toBe('server-wide');
    expect(waitSeen(query('Writing to net'))).toBe('unclear');
  });
});

describe('abandonReport (whether the server was stuck, for the breaker)', () => {
  const onServer = { queuedMs: 3, serverMs: 2000 };
  const mostlyQueued = { queuedMs: 1900, serverMs: 100 };

  it('a row-lock wait is never the server being stuck, however it was timed', () => {
    for (const times of [onServer, mostlyQueued])
      expect(abandonReport({ mayHaveApplied: false, wait: 'row-lock' }, times)).toEqual({
        mayHaveApplied: false,
        dependencyStuck: false,
        waitedFor: 'row-lock',
      });
  });

  it("a table-lock wait is the node's, but not server-wide: another write's commit excuses it", () => {
    for (const times of [onServer, mostlyQueued])
      expect(abandonReport({ mayHaveApplied: false, wait: 'table-lock' }, times)).toEqual({
        mayHaveApplied: false,
        dependencyStuck: true,
      });
  });

  it('a server-wide wait always is, and says so (no commit of another write excuses it)', () => {
    for (const times of [onServer, mostlyQueued])
      expect(abandonReport({ mayHaveApplied: true, wait: 'server-wide' }, times)).toEqual({
        mayHaveApplied: true,
        dependencyStuck: true,
        serverWide: true,
      });
  });

  it('an unclear one is, unless the call spent longer waiting for a connection than on the server', () => {
    // under FLUSH TABLES WITH READ LOCK: the thread ended by the server as the kill looked
    expect(abandonReport({ mayHaveApplied: true, wait: 'unclear' }, onServer)).toEqual({
      mayHaveApplied: true,
      dependencyStuck: true,
    });
    // got its connection as the writes ahead of it were killed, read just started
    expect(abandonReport({ mayHaveApplied: false, wait: 'unclear' }, mostlyQueued)).toEqual({
      mayHaveApplied: false,
      dependencyStuck: false,
      waitedFor: 'connection',
    });
  });
});
