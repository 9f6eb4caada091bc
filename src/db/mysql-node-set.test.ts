import { describe, expect, it } from 'vitest';
import { beforeCommit, stuckOnWrites } from './mysql-node-set.js';

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

describe('stuckOnWrites (whether a write abandoned at its call timeout shows the server stuck on writes)', () => {
  const query = (STATE: string, TRX_STATE?: string | null) => ({
    COMMAND: 'Query',
    STATE,
    INFO: 'INSERT INTO books',
    TRX_STATE,
  });

  it('no: waiting for a row lock another transaction holds (its own wait)', () => {
    expect(stuckOnWrites(query('Updating', 'LOCK WAIT'))).toBe(false);
    expect(stuckOnWrites(query('Statistics', 'LOCK WAIT'))).toBe(false);
  });

  it('yes: a server-wide wait, and a thread gone, idle or on its way out after a disconnected backup-lock wait', () => {
    expect(stuckOnWrites(query('Waiting for backup lock', null))).toBe(true);
    expect(stuckOnWrites(query('Waiting for semi-sync ACK from slave', 'RUNNING'))).toBe(true);
    expect(stuckOnWrites(undefined)).toBe(true);
    // seen in the milliseconds after MariaDB ended such a wait (FLUSH TABLES WITH READ LOCK)
    expect(stuckOnWrites({ COMMAND: 'Sleep', STATE: '', INFO: null, TRX_STATE: null })).toBe(true);
    expect(stuckOnWrites(query('', null))).toBe(true);
    expect(stuckOnWrites(query('Writing to net', null))).toBe(true);
    expect(stuckOnWrites(query('Updating status', null))).toBe(true);
  });

  it('without the PROCESS privilege (no InnoDB state): by the PROCESSLIST state alone', () => {
    expect(stuckOnWrites(query('Updating'))).toBe(false);
    expect(stuckOnWrites(query('Sending data'))).toBe(false);
    expect(stuckOnWrites(query('Waiting for backup lock'))).toBe(true);
    expect(stuckOnWrites(query('Writing to net'))).toBe(true);
    expect(stuckOnWrites({ COMMAND: 'Sleep', STATE: '', INFO: null })).toBe(true);
  });
});
