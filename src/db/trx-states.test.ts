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
    expect([...innodbTrxStates(STATUS)]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    // MySQL names the thread so
    expect([...innodbTrxStates(STATUS.replaceAll('MariaDB thread id', 'MySQL thread id'))]).toEqual([
      [980, 'LOCK WAIT'],
      [979, 'RUNNING'],
    ]);
    expect(innodbTrxStates('')).toEqual(new Map());
  });
});

describe('TrxStates', () => {
  it('shares the read running among the kills asking meanwhile, and reads anew after it', async () => {
    const states = new TrxStates();
    let reads = 0;
    let release: (m: Map<number, string>) => void = () => {};
    const query = () => {
      reads++;
      return new Promise<Map<number, string>>((r) => (release = r));
    };
    const [a, b] = [states.read(query), states.read(query)];
    release(new Map([[7, 'LOCK WAIT']]));
    expect(await b).toBe(await a);
    expect(reads).toBe(1);
    const c = states.read(query);
    release(new Map());
    expect((await c)?.size).toBe(0);
    expect(reads).toBe(2);
  });

  it('passes a failed read to every kill that shared it', async () => {
    const states = new TrxStates();
    const failing = () => Promise.reject(new Error('gone'));
    const [a, b] = [states.read(failing), states.read(failing)];
    await expect(a).rejects.toThrow('gone');
    await expect(b).rejects.toThrow('gone');
    expect(await states.read(async () => undefined)).toBeUndefined();
  });
});
