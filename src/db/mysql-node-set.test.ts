import { describe, expect, it } from 'vitest';
import { beforeCommit } from './mysql-node-set.js';

// the rows are what MariaDB 10.11's information_schema.PROCESSLIST showed for each case
describe('beforeCommit (whether a KILL now surely rolls a write back)', () => {
  it('yes: a statement before the COMMIT, waiting on a row lock or on the global read lock', () => {
    for (const [STATE, INFO] of [
      ['Sending data', 'SELECT * FROM bo'],
      ['Updating', 'UPDATE books SET'],
      ['Update', 'INSERT INTO books'],
      ['Waiting for backup lock', 'INSERT INTO books'],
    ] as const)
      expect(beforeCommit({ COMMAND: 'Query', STATE, INFO }), `${STATE} ${INFO}`).toBe(true);
    // the COMMIT itself, still waiting to begin (a global read lock)
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for backup lock', INFO: 'COMMIT' })).toBe(true);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for commit lock', INFO: ' commit' })).toBe(true);
  });

  it('no: idle (it ran all it received), in its COMMIT, or committed and waiting for a semi-sync ack', () => {
    expect(beforeCommit({ COMMAND: 'Sleep', STATE: '', INFO: null })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'Commit', INFO: 'COMMIT' })).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'query end', INFO: 'COMMIT' })).toBe(false);
    expect(
      beforeCommit({ COMMAND: 'Query', STATE: 'Waiting for semi-sync ACK from slave', INFO: 'COMMIT' }),
    ).toBe(false);
    expect(beforeCommit({ COMMAND: 'Query', STATE: 'starting', INFO: null })).toBe(false);
  });
});
