import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseEnv } from '../src/env.js';
import { stackEnv } from './stack-env.js';

describe('stack environment', () => {
  beforeEach(() => {
    // set, so stackEnv() reads them instead of generating a secret into .stack/
    vi.stubEnv('SHARDGATE_JWT_SECRET', 'x'.repeat(32));
    vi.stubEnv('SHARDGATE_DB_PASSWORD', 'p');
  });
  afterEach(() => vi.unstubAllEnvs());

  it("gives every process the addresses src/env.ts defaults to (the env schema's defaults are the topology's)", () => {
    // src/ may not import stack/topology.ts (runtime-neutral), so its defaults repeat the
    // topology's ports; this keeps the two the same
    const defaults = parseEnv({});
    const stack = parseEnv(stackEnv());
    for (const name of [
      'SHARDGATE_LISTEN_HOST',
      'SHARDGATE_ETCD_ENDPOINTS',
      'SHARDGATE_ETCD_PREFIX',
      'SHARDGATE_REDIS_URL',
      'SHARDGATE_AMQP_URL',
      'SHARDGATE_SMTP_URL',
      'SHARDGATE_DB_USER',
    ] as const) {
      expect(stack[name], name).toEqual(defaults[name]);
    }
  });
});
