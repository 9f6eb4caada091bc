import type { QueryOptions } from 'mysql2/promise';
import { describe, expect, it } from 'vitest';
import { type BatchTarget, StatementBatcher } from './statement-batcher.js';

/** a connection that answers every COM_QUERY with an OK packet per statement, and records them */
function recordingTarget() {
  const sent: string[] = [];
  let destroyed = false;
  const target: BatchTarget = {
    async query(options: QueryOptions) {
      sent.push(options.sql);
      const statements = options.sql.split(';\n');
      if (statements.length === 1) return [{}, undefined];
      return [statements.map(() => ({})), statements.map(() => undefined)];
    },
    format: (sql) => sql,
    destroy() {
      destroyed = true;
    },
  };
  return { sent, target, destroyed: () => destroyed };
}

describe('StatementBatcher.queryLast', () => {
  it('sends the statements of a turn and the last one in one round trip', async () => {
    const { sent, target } = recordingTarget();
    const batcher = new StatementBatcher(target);
    await Promise.all([batcher.query({ sql: 'INSERT a' }), batcher.queryLast({ sql: 'COMMIT' })]);
    expect(sent).toEqual(['INSERT a;\nCOMMIT']);
  });

  it('does not send the last statement when its signal fired before the flush, and fails it with the reason', async () => {
    const { sent, target } = recordingTarget();
    const batcher = new StatementBatcher(target);
    const cancel = new AbortController();
    const insert = batcher.query({ sql: 'INSERT a' });
    const commit = batcher.queryLast({ sql: 'COMMIT' }, cancel.signal);
    const refused = new Error('a value that does not encode');
    // a sibling promise of the caller fails client-side in this same turn
    await Promise.resolve();
    cancel.abort(refused);
    await expect(commit).rejects.toBe(refused);
    await insert;
    expect(sent).toEqual(['INSERT a']);
  });

  it('checks the signal again before a last statement that waits for several round trips', async () => {
    const { sent, target } = recordingTarget();
    const batcher = new StatementBatcher(target);
    const cancel = new AbortController();
    const refused = new Error('refused');
    // two typeCasts: two COM_QUERYs, the COMMIT only after both answered
    const a = batcher.query({ sql: 'SELECT a', typeCast: false });
    const b = batcher.query({ sql: 'SELECT b' });
    const commit = batcher.queryLast({ sql: 'COMMIT' }, cancel.signal);
    void a.then(() => cancel.abort(refused));
    await expect(commit).rejects.toBe(refused);
    await Promise.all([a, b]);
    expect(sent).toEqual(['SELECT a', 'SELECT b']);
  });

  it('destroys its connection', () => {
    const { target, destroyed } = recordingTarget();
    new StatementBatcher(target).destroy();
    expect(destroyed()).toBe(true);
  });
});
