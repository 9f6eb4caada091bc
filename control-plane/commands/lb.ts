/**
 * `lb weight <instanceId> <weight>`: write `lb/weights/<id>` (0–256, 0 = drain). An instance that
 * is not registered now (no `instances/<id>`: down, not started yet, or a typo) still gets its
 * weight, with a warning on stderr naming it, printed once the write is done. Without the key
 * (deleted with etcdctl), `lb sync` gives the server its haproxy.cfg weight again, ending a
 * weight-0 drain.
 */
import { parseConfigKey } from '../../src/config/schema.js';
import type { CtlContext } from '../ctl-context.js';
import { UserError } from '../ctl-errors.js';
import { writeKeys } from '../write-keys.js';

export async function setWeight(ctx: CtlContext, instanceId: string, weight: string): Promise<void> {
  const key = `lb/weights/${instanceId}`;
  const r = parseConfigKey(key, weight);
  if (!r.ok) throw new UserError(`invalid ${ctx.prefix}${key}: ${r.reason}`);
  const registration = `instances/${instanceId}`;
  let registered = true;
  await writeKeys(ctx, (read) => {
    registered = read.entries.has(registration);
    return new Map([[key, weight.trim()]]);
  });
  if (!registered) {
    ctx.warn(
      `lb weight: warning: instance ${instanceId} is not registered now (no ${ctx.prefix}${registration}); HAProxy applies the weight to its server of that name (lb sync), if its backend has one: a typo of the id never applies`,
    );
  }
}
