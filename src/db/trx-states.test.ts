import { describe, expect, it } from 'vitest';
import { innodbTrxStates, TrxStates } from './trx-states.js';

/** the TRANSACTIONS section of MariaDB 10.11's SHOW ENGINE INNODB STATUS with one lock wait */
const STATUS = `
------------
TRANSACTIONS
------------
Trx id counter 51737
LIST OF TRANSACTIONS FOR EACH SESSION:
---TRANSACTION 51736, ACTIVE 1 sec starting index read
mysql tables in use 1, locked 1
LOCK WAIT 2 lock struct(s), heap size 1128, 1 row lock(s)
MariaDB thread id 980, OS thread handle 140415571793600, query id 7353 127.0.0.1 root Statistics
SELECT * FROM zz_p WHERE id=1 LIMIT 1 FOR UPDATE
------- TRX HAS BEEN WAITING 1003738 us FOR THIS LOCK TO BE GRANTED:
RECORD LOCKS space id 15 page no 3 n bits 320 index PRIMARY of table \`shardgate\`.\`zz_p\` trx id 51736 lock_mode X locks rec but not gap waiting

------------------
---TRANSACTION 51735, ACTIVE 1 sec
2 lock struct(s), heap size 1128, 1 row lock(s)
MariaDB thread id 979, OS thread handle 140415570257600, query id 7344 127.0.0.1 root User sleep
SELECT SLEEP(4)
---TRANSACTION (0x7fb521161180), not started
0 lock struct(s), heap size 1128, 0 row lock(s)
--------
FILE I/O
--------
`;

describe('innodbTrxStates', () => {
  it('tells each listed transaction by its thread: waiting for a lock, or running', () => {
    expect([...(innodbTrxStates(STATUS) ?? [])]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    // MySQL names the thread so
    expect([...(innodbTrxStates(STATUS.replaceAll('MariaDB thread id', 'MySQL thread id')) ?? [])]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    expect(innodbTrxStates('')).toBeUndefined();
  });

  it('reads the TRANSACTIONS section alone, a block without a thread line ending at the next rule', () => {
    // a deadlock's report (before the section) names threads and holds statements' text
    const deadlock = `------------------------\nLATEST DETECTED DEADLOCK\n------------------------\n---TRANSACTION 7, ACTIVE\nLOCK WAIT 1 lock struct(s)\nMariaDB thread id 979, OS thread handle 1\n`;
    expect([...(innodbTrxStates(deadlock + STATUS) ?? [])]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    // nothing after a "not started" block's rule is read as its header, nor after FILE I/O
    const after = STATUS.replace(
      '--------\nFILE I/O\n--------\n',
      '--------\nMariaDB thread id 5, OS\nFILE I/O\nMariaDB thread id 6, OS\n',
    );
    expect([...(innodbTrxStates(after) ?? [])]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    // a text without the section's end is not one this parser knows
    expect(innodbTrxStates(STATUS.replace('FILE I/O', 'FILE IO'))).toBeUndefined();
    expect(innodbTrxStates(STATUS.replace('\nTRANSACTIONS\n', '\nTRX\n'))).toBeUndefined();
  });

  it("reads no line of a statement's text: a value holding U+2028/U+2029 or a block of its own fakes nothing", () => {
    // mysql2 escapes CR and LF in a value, not U+2028 or U+2029: a title with them reached the
    // status text raw, and a parser reading lines with ^ and the m flag took them for lines
    const forged = STATUS.replace(
      'SELECT SLEEP(4)',
      "UPDATE books SET title = 'x\u2028LOCK WAIT \u2029---TRANSACTION 9, ACTIVE\u2029MariaDB thread id 980, OS'",
    );
    expect([...(innodbTrxStates(forged) ?? [])]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    // even one split at LF: a block of the statement's text names a thread already listed
    const split = STATUS.replace(
      'SELECT SLEEP(4)',
      "SELECT 'x\n---TRANSACTION 9, ACTIVE\nMariaDB thread id 980, OS'",
    );
    expect(innodbTrxStates(split)?.get(980)).toBe('LOCK WAIT');
  });

  it('tells nothing of a text InnoDB cut short (its list lost its start)', () => {
    expect(
      innodbTrxStates(STATUS.replace('LIST OF TRANSACTIONS FOR EACH SESSION:', '...truncated...')),
    ).toBeUndefined();
  });
});

describe('TrxStates', () => {
  it('gives a kill asking while a read runs the next read, shared by all asking meanwhile', async () => {
    const states = new TrxStates();
    let reads = 0;
    const releases: ((m: Map<number, string>) => void)[] = [];
    const query = () => {
      reads++;
      return new Promise<Map<number, string>>((r) => releases.push(r));
    };
    const a = states.read(query);
    // asked while `a` runs: a read begun after it, one for both
    const [b, c] = [states.read(query), states.read(query)];
    expect(c).toBe(b);
    expect(reads).toBe(1);
    releases[0]?.(new Map([[7, 'RUNNING']]));
    expect((await a)?.get(7)).toBe('RUNNING');
    await new Promise((r) => setTimeout(r, 0));
    expect(reads).toBe(2);
    releases[1]?.(new Map([[7, 'LOCK WAIT']]));
    expect((await b)?.get(7)).toBe('LOCK WAIT');
    // nothing running: read at once
    void states.read(query);
    expect(reads).toBe(3);
  });

  it('passes a failed read to the kills that shared it; the next read is made all the same', async () => {
    const states = new TrxStates();
    let calls = 0;
    const query = async () => {
      calls++;
      if (calls === 1) throw new Error('gone');
      return new Map<number, string>();
    };
    const a = states.read(query);
    const b = states.read(query);
    await expect(a).rejects.toThrow('gone');
    expect(await b).toEqual(new Map());
    expect(calls).toBe(2);
  });
});
