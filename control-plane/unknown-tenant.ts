/**
 * The refusal of a command given a tenant id the directory does not hold. An id that could never
 * be a tenant's (not ID_PATTERN) says so too, as `tenants create` would: "unknown" alone reads
 * as a typo of an existing id. Such an id is still looked up first: an entry put under it by
 * hand (which the instances reject) can be shown and removed.
 */
import { ID_PATTERN } from '../src/config/schema.js';
import { UserError } from './ctl-errors.js';

export function unknownTenant(id: string): UserError {
  if (ID_PATTERN.test(id)) return new UserError(`unknown tenant ${id}`);
  return new UserError(
    `unknown tenant "${id}": not a valid tenant id either (must match ${ID_PATTERN.source})`,
  );
}
