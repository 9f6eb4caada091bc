import { describe, expect, it } from 'vitest';
import { CommitGuardError } from '../domain/data-access.js';
import { isConnectionError } from './mysql-errors.js';
import { MysqlSession } from './mysql-session.js';
import type { SqlContext } from './repos/sql-context.js';
import { type BatchTarget, StatementBatcher } from './statement-batcher.js';

/** a connection that answers every statement but COMMIT, whose connection is lost (and stays so) */
function lostAtCommit() {
  const sent: string[] = [];
  const lost = Object.assign(new Error('Connection lost: The server closed the connection.'), {
    code: 'PROTOCOL_CONNECTION_LOST',
    fatal: true,
  });
  let closed = false;
  const answer = async (options: { sql: string }) => {
    sent.push(options.sql);
    if (closed) throw closedState();
    if (options.sql === 'COMMIT') {
      closed = true;
      throw lost;
    }
    return [{}, undefined] as [unknown, unknown];
  };
  const sql = { client: { query: answer, queryLast: answer } } as unknown as SqlContext;
  return { sent, session: new MysqlSession('mariadb', sql) };
}

describe('MysqlSession.commitSent', () => {
  it('is false until a COMMIT is sent, true after, whether it answered or not', async () => {
    const { sent, session } = lostAtCommit();
    await expect(
      session.transaction(async () => {
        expect(session.commitSent).toBe(false);
        return 1;
      }),
    ).rejects.toThrow('Connection lost');
    // the failed COMMIT is rolled back (it fails too here: the connection is gone)
    expect(sent).toEqual(['START TRANSACTION', 'COMMIT', 'ROLLBACK', 'SELECT @@GLOBAL.gtid_binlog_pos']);
    expect(session.commitSent).toBe(true);
  });

  it('is true once commitWith sent its COMMIT', async () => {
    const { session } = lostAtCommit();
    await expect(session.transaction(async (_sql, tx) => tx.commitWith(async () => 1))).rejects.toThrow(
      'Connection lost',
    );
    expect(session.commitSent).toBe(true);
  });

  it('stays false for a transaction rolled back before its COMMIT', async () => {
    const { sent, session } = lostAtCommit();
    await expect(
      session.transaction(async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(sent).toEqual(['START TRANSACTION', 'ROLLBACK', 'SELECT @@GLOBAL.gtid_binlog_pos']);
    expect(session.commitSent).toBe(false);
  });
});

/** mysql2's error for a command on a connection that died: fatal, no errno, no code */
function closedState() {
  return Object.assign(new Error("Can't add new command when connection is in closed state"), {
    fatal: true,
  });
}

/** a server error of a statement (mysql2 sets `errno` and `code`) */
function serverError(errno: number, code: string) {
  return Object.assign(new Error(code), { errno, code });
}

/**
 * A connection whose answers `fail` decides (it throws for a failing statement), through a plain
 * client (each statement alone); records the statements and whether it was destroyed.
 */
function scripted(fail: (sql: string) => void) {
  const sent: string[] = [];
  let destroyed = false;
  const answer = async (options: { sql: string }) => {
    sent.push(options.sql);
    fail(options.sql);
    return [{}, undefined] as [unknown, unknown];
  };
  const client = {
    query: answer,
    queryLast: answer,
    destroy() {
      destroyed = true;
    },
  };
  const session = new MysqlSession('mariadb', { client } as unknown as SqlContext);
  return { sent, session, destroyed: () => destroyed };
}

/**
 * The same through a real StatementBatcher: `fail` sees each COM_QUERY (statements joined by
 * `;\n`) and throws to fail it, as the server stops a multi-statement at its first failing one.
 */
function batched(fail: (sql: string) => void) {
  const sent: string[] = [];
  let destroyed = false;
  const target: BatchTarget = {
    async query(options) {
      sent.push(options.sql);
      fail(options.sql);
      const statements = options.sql.split(';\n');
      if (statements.length === 1) return [{}, undefined];
      return [statements.map(() => ({})), statements.map(() => undefined)];
    },
    format: (sql) => sql,
    destroy() {
      destroyed = true;
    },
  };
  const client = new StatementBatcher(target);
  const session = new MysqlSession('mariadb', { client } as unknown as SqlContext);
  return { sent, session, client, destroyed: () => destroyed };
}

describe('MysqlSession.transaction when its ROLLBACK fails', () => {
  it('answers a refusal whose ROLLBACK found the connection closed as the refusal, and destroys the connection', async () => {
    const { sent, session, destroyed } = scripted((sql) => {
      if (sql === 'ROLLBACK') throw closedState();
    });
    const refusal = new Error('no copy available');
    await expect(
      session.transaction(async () => {
        throw refusal;
      }),
    ).rejects.toBe(refusal);
    expect(sent).toEqual(['START TRANSACTION', 'ROLLBACK', 'SELECT @@GLOBAL.gtid_binlog_pos']);
    expect(destroyed()).toBe(true);
    expect(session.commitSent).toBe(false);
  });

  it('throws the connection error of fn’s statements, not the ROLLBACK’s, when both failed', async () => {
    const lost = Object.assign(new Error('Connection lost'), {
      code: 'PROTOCOL_CONNECTION_LOST',
      fatal: true,
    });
    const { session, destroyed } = scripted((sql) => {
      if (sql === 'ROLLBACK') throw closedState();
    });
    await expect(
      session.transaction(async () => {
        throw lost;
      }),
    ).rejects.toBe(lost);
    expect(isConnectionError(lost)).toBe(true);
    expect(destroyed()).toBe(true);
  });

  it('throws the COMMIT’s lost connection (outcome unknown) even when fn caught it and refused', async () => {
    const lost = Object.assign(new Error('Connection lost'), {
      code: 'PROTOCOL_CONNECTION_LOST',
      fatal: true,
    });
    const { session, destroyed } = scripted((sql) => {
      if (sql === 'COMMIT') throw lost;
      if (sql === 'ROLLBACK') throw closedState();
    });
    await expect(
      session.transaction(async (_sql, tx) => {
        await tx.commitWith(async () => 1).catch(() => {});
        throw new Error('refused after a failed commit');
      }),
    ).rejects.toBe(lost);
    expect(session.commitSent).toBe(true);
    expect(destroyed()).toBe(true);
  });

  it('keeps the connection when the ROLLBACK succeeds', async () => {
    const { session, destroyed } = scripted(() => {});
    await expect(
      session.transaction(async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(destroyed()).toBe(false);
  });
});

describe('MysqlSession commitWith', () => {
  it('sends no COMMIT when a promise of `last` fails client-side, and rolls back', async () => {
    const { sent, session, destroyed } = batched(() => {});
    const refused = new Error('Do not know how to serialize a BigInt');
    await expect(
      session.transaction((sql, tx) =>
        tx.commitWith(() =>
          Promise.all([
            sql.client.query({ sql: 'INSERT a' }),
            (async () => {
              throw refused;
            })(),
          ]),
        ),
      ),
    ).rejects.toBe(refused);
    expect(sent.some((s) => s.includes('COMMIT'))).toBe(false);
    expect(sent).toEqual(['START TRANSACTION;\nINSERT a', 'ROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos']);
    expect(destroyed()).toBe(false);
  });
});

describe('MysqlSession.transaction when its COMMIT fails', () => {
  it('rolls back when fn answers ok after a guard stopped commitWith’s COMMIT', async () => {
    const guardStop = serverError(1242, 'ER_SUBQUERY_NO_1_ROW');
    const { sent, session, destroyed } = batched((sql) => {
      if (sql.includes('GUARD')) throw guardStop;
    });
    await expect(
      session.transaction(async (sql, tx) => {
        await sql.client.query({ sql: 'SELECT 1' });
        try {
          await tx.commitWith(() =>
            Promise.all([
              sql.client.query({ sql: 'INSERT outbox' }),
              sql.client.query({ sql: 'UPDATE GUARD' }),
            ]),
          );
        } catch (error) {
          if (!(error instanceof CommitGuardError)) throw error;
        }
        return 'handled';
      }),
    ).rejects.toBe(guardStop);
    expect(sent).toEqual([
      'START TRANSACTION;\nSELECT 1',
      'INSERT outbox;\nUPDATE GUARD;\nCOMMIT',
      'ROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos',
    ]);
    expect(destroyed()).toBe(false);
  });

  it('rolls back a COMMIT the server refused', async () => {
    const refused = serverError(1180, 'ER_ERROR_DURING_COMMIT');
    const { sent, session, destroyed } = scripted((sql) => {
      if (sql === 'COMMIT') throw refused;
    });
    await expect(session.transaction(async () => 1)).rejects.toBe(refused);
    expect(sent).toEqual(['START TRANSACTION', 'COMMIT', 'ROLLBACK', 'SELECT @@GLOBAL.gtid_binlog_pos']);
    expect(destroyed()).toBe(false);
  });

  it('destroys the connection when that ROLLBACK fails too', async () => {
    const refused = serverError(1180, 'ER_ERROR_DURING_COMMIT');
    const { session, destroyed } = scripted((sql) => {
      if (sql === 'COMMIT') throw refused;
      if (sql === 'ROLLBACK') throw closedState();
    });
    await expect(session.transaction(async () => 1)).rejects.toBe(refused);
    expect(destroyed()).toBe(true);
  });
});

describe('MysqlSession.rolledBackAt', () => {
  it("is the master's position, read in the ROLLBACK's own round trip: what a refusal saw, for its token", async () => {
    const sent: string[] = [];
    const target: BatchTarget = {
      async query(options) {
        sent.push(options.sql);
        const statements = options.sql.split(';\n');
        const answers = statements.map((s) => (s.startsWith('SELECT @@GLOBAL') ? [['0-1-42']] : {}));
        return statements.length === 1 ? [answers[0], undefined] : [answers, statements.map(() => undefined)];
      },
      format: (sql) => sql,
      destroy() {},
    };
    const session = new MysqlSession('mariadb', {
      client: new StatementBatcher(target),
    } as unknown as SqlContext);
    await expect(
      session.transaction(async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    // (a refusal before any statement: the START TRANSACTION rides along too)
    expect(sent).toEqual(['START TRANSACTION;\nROLLBACK;\nSELECT @@GLOBAL.gtid_binlog_pos']);
    expect(session.rolledBackAt).toBe('0-1-42');
  });

  it('is undefined when that round trip failed (the refusal stands, without a token)', async () => {
    const { session, destroyed } = scripted((sql) => {
      if (sql === 'ROLLBACK') throw closedState();
    });
    await expect(
      session.transaction(async () => {
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect(session.rolledBackAt).toBeUndefined();
    expect(destroyed()).toBe(true);
  });
});

describe('MysqlSession.committedWrite', () => {
  /** a connection whose COMMIT answers `commitOk`; a position read answers 0-1-5 */
  function answering(commitOk: unknown, flavour: 'mariadb' | 'mysql' = 'mariadb') {
    const answer = async (options: { sql: string }) => {
      if (options.sql === 'COMMIT') return [commitOk, undefined] as [unknown, unknown];
      return [[['0-1-5']], undefined] as [unknown, unknown];
    };
    const sql = { client: { query: answer, queryLast: answer } } as unknown as SqlContext;
    return new MysqlSession(flavour, sql);
  }

  it("is true once a COMMIT's answer carried a new last_gtid (MariaDB), never for one that wrote nothing", async () => {
    const wrote = answering({ stateChanges: { systemVariables: { last_gtid: '0-1-6' } } });
    expect(wrote.committedWrite).toBe(false);
    await expect(wrote.transaction(async () => 1)).resolves.toEqual({ value: 1, gtid: '0-1-6' });
    expect(wrote.committedWrite).toBe(true);
    // a transaction that wrote nothing: no last_gtid in the answer (what a global read lock lets through)
    const readOnly = answering({});
    await readOnly.transaction(async () => 1);
    expect(readOnly.committedWrite).toBe(false);
    // MySQL's COMMIT does not say: never
    const mysql = answering({ stateChanges: { systemVariables: { last_gtid: 'x' } } }, 'mysql');
    await mysql.transaction(async () => 1);
    expect(mysql.committedWrite).toBe(false);
  });
});
