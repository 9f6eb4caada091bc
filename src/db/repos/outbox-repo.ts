/** Outbox rows of one tenant; written only inside the transaction of the change they report. */
import { newId } from '../../domain/ids.js';
import type { OutboxMessage } from '../../domain/models.js';
import type { OutboxRepo } from '../../domain/repositories.js';
import { outbox } from '../schema.js';
import type { Queryable } from './queryable.js';

export class DrizzleOutboxRepo implements OutboxRepo {
  constructor(
    private readonly db: Queryable,
    private readonly tenantId: string,
  ) {}

  async add(message: OutboxMessage, at: Date): Promise<void> {
    await this.db.insert(outbox).values({
      id: newId(at.getTime()),
      tenantId: this.tenantId,
      kind: message.kind,
      recipient: message.recipient,
      payload: message.payload,
      createdAt: at,
      availableAt: at,
    });
  }
}
