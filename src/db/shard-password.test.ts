import { describe, expect, it } from 'vitest';
import { missingPasswordHint, shardPassword } from './shard-password.js';

describe('shard password', () => {
  it("takes the shard's passwordEnv variable, else (naming none) SHARDGATE_DB_PASSWORD", () => {
    const env = { SHARDGATE_DB_PASSWORD: 'common' };
    const processEnv = { SHARDGATE_DB_PASSWORD_EU: 'eu', SHARDGATE_DB_PASSWORD_DEV: '' };
    expect(shardPassword(env, 'SHARDGATE_DB_PASSWORD_EU', processEnv)).toBe('eu');
    expect(shardPassword(env, 'SHARDGATE_DB_PASSWORD_DEV', processEnv)).toBe('');
    expect(shardPassword(env, undefined, processEnv)).toBe('common');
    expect(shardPassword({ SHARDGATE_DB_PASSWORD: undefined }, undefined, {})).toBeUndefined();
  });

  it('sends no password for a passwordEnv the process lacks, never the shared one (a typo in etcd)', () => {
    const env = { SHARDGATE_DB_PASSWORD: 'common' };
    expect(shardPassword(env, 'SHARDGATE_DB_PASSWORD_NOPE', {})).toBeUndefined();
    expect(
      missingPasswordHint(shardPassword(env, 'SHARDGATE_DB_PASSWORD_NOPE', {}), 'SHARDGATE_DB_PASSWORD_NOPE'),
    ).toBe(' (no password given: is SHARDGATE_DB_PASSWORD_NOPE set?)');
  });

  it('names the variable to set when no password, or an empty one, was sent', () => {
    expect(missingPasswordHint(undefined, undefined)).toBe(
      ' (no password given: is SHARDGATE_DB_PASSWORD set?)',
    );
    expect(missingPasswordHint(undefined, 'SHARDGATE_DB_PASSWORD_EU')).toBe(
      ' (no password given: is SHARDGATE_DB_PASSWORD_EU set?)',
    );
    expect(missingPasswordHint('', undefined)).toBe(
      ' (an empty password given: SHARDGATE_DB_PASSWORD is set but empty)',
    );
    expect(missingPasswordHint('secret', undefined)).toBe('');
  });
});
