import { describe, expect, it } from 'vitest';
import type { Logger } from '../observability/logger.js';
import { ReplicationWatch } from './replication-watch.js';

/** a logger that keeps its warn lines */
function recordingLogger(): { logger: Logger; warned: { fields: Record<string, unknown>; msg: string }[] } {
  const warned: { fields: Record<string, unknown>; msg: string }[] = [];
  const logger = {
    warn: (fields: Record<string, unknown>, msg: string) => warned.push({ fields, msg }),
    info: () => {},
    error: () => {},
    debug: () => {},
    child: () => logger,
  } as unknown as Logger;
  return { logger, warned };
}

const serverError = (errno: number, message = `error ${errno}`) =>
  Object.assign(new Error(message), { errno });

describe('ReplicationWatch', () => {
  it("asks the flavour's statement and reads the rows", async () => {
    const { logger } = recordingLogger();
    const watch = new ReplicationWatch('db:3327/x', logger);
    const asked: string[] = [];
    const reason = await watch.stopped('mariadb', async (sql) => {
      asked.push(sql);
      return [
        { Slave_IO_Running: 'Yes', Slave_SQL_Running: 'No', Last_SQL_Errno: 1062, Last_SQL_Error: 'dup' },
      ];
    });
    expect(asked).toEqual(['SHOW ALL SLAVES STATUS']);
    expect(reason).toBe('replication stopped: SQL thread error 1062: dup');
    await watch.stopped('mysql', async (sql) => {
      asked.push(sql);
      return [];
    });
    expect(asked[1]).toBe('SHOW REPLICA STATUS');
  });

  it('without the grant answers undefined, logs once naming it, and never asks that node again', async () => {
    for (const [flavour, errno, grant] of [
      ['mariadb', 1227, 'SLAVE MONITOR'],
      ['mysql', 1142, 'REPLICATION CLIENT'],
    ] as const) {
      const { logger, warned } = recordingLogger();
      const watch = new ReplicationWatch('db:3327/x', logger);
      let asked = 0;
      const query = async () => {
        asked++;
        throw serverError(errno);
      };
      expect(await watch.stopped(flavour, query)).toBeUndefined();
      expect(await watch.stopped(flavour, query)).toBeUndefined();
      expect(asked).toBe(1);
      expect(warned).toHaveLength(1);
      expect(warned[0]!.msg).toContain(grant);
    }
  });

  it('throws a lost connection (the probe fails)', async () => {
    const { logger } = recordingLogger();
    const watch = new ReplicationWatch('db:3327/x', logger);
    const lost = Object.assign(new Error('Connection lost: The server closed the connection.'), {
      code: 'PROTOCOL_CONNECTION_LOST',
      fatal: true,
    });
    await expect(
      watch.stopped('mariadb', async () => {
        throw lost;
      }),
    ).rejects.toBe(lost);
  });

  it('answers undefined for another server error, logged once per errno, and keeps asking', async () => {
    const { logger, warned } = recordingLogger();
    const watch = new ReplicationWatch('db:3327/x', logger);
    let asked = 0;
    const failing = async () => {
      asked++;
      throw serverError(1064, 'syntax error near REPLICA');
    };
    expect(await watch.stopped('mysql', failing)).toBeUndefined();
    expect(await watch.stopped('mysql', failing)).toBeUndefined();
    expect(asked).toBe(2);
    expect(warned).toHaveLength(1);
    expect(await watch.stopped('mysql', async () => [])).toBeUndefined();
    await watch.stopped('mysql', failing);
    expect(warned).toHaveLength(2); // logged again after a success
  });
});
