import { describe, expect, it } from 'vitest';
import { beforeCommit } from './mysql-node-set.js';

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
