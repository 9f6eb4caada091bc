/** `lb weight <instanceId> <weight>`: write `lb/weights/<id>` (0–256, 0 = drain). */
import { parseConfigKey } from '../../src/config/schema.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { writeKeys } from '../write-keys.js';

export async function setWeight(ctx: CtlContext, instanceId: string, weight: string): Promise<void> {
  const key = `lb/weights/${instanceId}`;
  const r = parseConfigKey(key, weight);
  if (!r.ok) throw new UserError(`invalid ${ctx.prefix}${key}: ${r.reason}`);
  await writeKeys(ctx, () => new Map([[key, weight.trim()]]));
}
