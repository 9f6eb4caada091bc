import { describe, expect, it } from 'vitest';
import { passwordEnvWarning } from './password-env-warning.js';

describe('passwordEnvWarning', () => {
  it('names the variable and what the instances lacking it do, when this environment lacks it', () => {
    expect(passwordEnvWarning('shards add', 'shard-3', 'SHARDGATE_DB_PASSWORD_NOPE', {})).toBe(
      "shards add: warning: shard shard-3's passwordEnv SHARDGATE_DB_PASSWORD_NOPE is not set in this command's environment: an instance whose environment lacks it too rejects the shard's entry (check GET /health/config or shardgate-ctl status)",
    );
  });

  it('says nothing when the variable is set (empty counts: a passwordless account) or none is named', () => {
    expect(
      passwordEnvWarning('shards add', 's', 'SHARDGATE_DB_PASSWORD_S', { SHARDGATE_DB_PASSWORD_S: 'pw' }),
    ).toBe(undefined);
    expect(
      passwordEnvWarning('shards add', 's', 'SHARDGATE_DB_PASSWORD_S', { SHARDGATE_DB_PASSWORD_S: '' }),
    ).toBe(undefined);
    expect(passwordEnvWarning('shards add', 's', undefined, {})).toBe(undefined);
  });
});
