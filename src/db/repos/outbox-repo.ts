/**
 * Outbox rows of one tenant; written only inside the transaction of the change they report.
 * The insert is prepared once per connection (sql-context.ts).
 */
import { sql } from 'drizzle-orm';
import { newId } from '../../domain/ids.js';
import type { OutboxMessage } from '../../domain/models.js';
import type { OutboxRepo } from '../../domain/repositories.js';
import { outbox } from '../schema.js';
import type { Queryable } from './queryable.js';
import type { SqlContext } from './sql-context.js';

const p = sql.placeholder;
const insert = (db: Queryable) =>
  db
    .insert(outbox)
    .values({
      id: p('id'),
      tenantId: p('tenantId'),
      kind: p('kind'),
      recipient: p('recipient'),
      payload: p('payload'),
      createdAt: p('at'),
      availableAt: p('at'),
    })
    .prepare();

export class DrizzleOutboxRepo implements OutboxRepo {
  constructor(
    private readonly sql: SqlContext,
    private readonly tenantId: string,
  ) {}

  async add(message: OutboxMessage, at: Date): Promise<void> {
    await this.sql.prepared(insert).execute({
      id: newId(at.getTime()),
      tenantId: this.tenantId,
      kind: message.kind,
      recipient: message.recipient,
      payload: message.payload,
      at,
    });
  }
}
