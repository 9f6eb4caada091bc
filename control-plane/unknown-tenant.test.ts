import { describe, expect, it } from 'vitest';
import { ID_PATTERN } from '../src/config/schema.js';
import { UserError } from './ctl-errors.js';
import { unknownTenant } from './unknown-tenant.js';

describe('unknownTenant', () => {
  it('names a well-formed id as unknown only', () => {
    const error = unknownTenant('acme-2');
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe('unknown tenant acme-2');
  });

  it('says an id that could never be a tenant is not a valid one, with the pattern', () => {
    const error = unknownTenant('BAD ID!');
    expect(error.message).toBe(
      `unknown tenant "BAD ID!": not a valid tenant id either (must match ${ID_PATTERN.source})`,
    );
  });
});
