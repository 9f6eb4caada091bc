import { describe, expect, it } from 'vitest';
import { REDIS_MAXMEMORY, REDIS_MAXMEMORY_POLICY, redisArgs } from './redis.js';
import { topology } from './topology.js';

/** `--name value` pairs of a redis-server command line */
function options(args: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    expect(args[i], `argument ${i}`).toMatch(/^--[a-z-]+$/);
    out.set(args[i]!.slice(2), args[i + 1]!);
  }
  return out;
}

describe('redisArgs (the command line `stack up` starts Redis with)', () => {
  it('bounds memory at 256mb and evicts the keys nearest their expiry first', () => {
    const o = options(redisArgs({ dir: '/tmp/x' }));
    expect(REDIS_MAXMEMORY).toBe('256mb');
    expect(REDIS_MAXMEMORY_POLICY).toBe('volatile-ttl');
    expect(o.get('maxmemory')).toBe('256mb');
    expect(o.get('maxmemory-policy')).toBe('volatile-ttl');
    expect(o.get('maxmemory-samples')).toBe('10');
  });

  it('serves the topology port on the topology host, without persistence, in the foreground', () => {
    const o = options(redisArgs({ dir: '/tmp/x' }));
    expect(o.get('port')).toBe(String(topology.redis.port));
    expect(o.get('bind')).toBe(topology.host);
    expect(o.get('save')).toBe('');
    expect(o.get('appendonly')).toBe('no');
    expect(o.get('dir')).toBe('/tmp/x');
    expect(o.get('daemonize')).toBe('no');
  });

  it('takes another port and bound (for a test Redis of its own)', () => {
    const o = options(redisArgs({ dir: '/tmp/y', port: 16999, maxmemory: '4mb' }));
    expect(o.get('port')).toBe('16999');
    expect(o.get('maxmemory')).toBe('4mb');
    expect(o.get('maxmemory-policy')).toBe('volatile-ttl');
  });
});
