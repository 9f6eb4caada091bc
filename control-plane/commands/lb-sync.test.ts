import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseEnv } from '../../src/env.js';
import { HAPROXY_SOCKET, REPO_ROOT } from '../../stack/paths.js';
import { haproxySocketPath, parseIntervalMs } from './lb-sync.js';

describe('haproxySocketPath (lb sync)', () => {
  it("defaults to the local stack's socket under the repository root, not under the working directory", () => {
    const path = haproxySocketPath(undefined, parseEnv({}));
    expect(path).toBe(HAPROXY_SOCKET);
    expect(path).toBe(join(REPO_ROOT, '.stack', 'haproxy.sock'));
  });

  it('takes SHARDGATE_HAPROXY_SOCKET from the parsed env, and --socket over it, each relative to the working directory', () => {
    const env = parseEnv({ SHARDGATE_HAPROXY_SOCKET: 'run/haproxy.sock' });
    expect(haproxySocketPath(undefined, env)).toBe(resolve('run/haproxy.sock'));
    expect(haproxySocketPath('/var/run/haproxy/haproxy.sock', env)).toBe('/var/run/haproxy/haproxy.sock');
    expect(haproxySocketPath('other.sock', env)).toBe(resolve('other.sock'));
  });
});

describe('parseIntervalMs (lb sync --interval-ms)', () => {
  it('is 1000 without the option, a whole number of ms within bounds with it, else a user error', () => {
    expect(parseIntervalMs(undefined)).toBe(1000);
    expect(parseIntervalMs('100')).toBe(100);
    for (const bad of ['99', '3600001', '1e3', 'abc'])
      expect(() => parseIntervalMs(bad), bad).toThrow(/--interval-ms/);
  });
});
