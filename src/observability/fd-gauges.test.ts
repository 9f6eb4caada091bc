import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { MAX_FDS, replaceFdGauges } from './fd-gauges.js';

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: too many open files, scandir '/proc/self/fd'`), {
    code,
    errno: code === 'EMFILE' ? -24 : -23,
    syscall: 'scandir',
  });
}

function registryWith(readdir: (path: string) => unknown[], softLimit: () => number | undefined) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  replaceFdGauges(registry, { softLimit, readdir });
  return async (name: string) => new RegExp(`\\n${name} (\\S+)`).exec(`\n${await registry.metrics()}`)?.[1];
}

describe.runIf(process.platform === 'linux')('process_open_fds and process_max_fds', () => {
  it("count /proc/self/fd, less the listing's own descriptor", async () => {
    const value = registryWith(
      () => ['0', '1', '2', '3'],
      () => 1024,
    );
    expect(await value('process_open_fds')).toBe('3');
  });

  it('show the soft limit when the listing fails for want of a descriptor (EMFILE), not the last count', async () => {
    let out = false;
    const value = registryWith(
      () => {
        if (out) throw errno('EMFILE');
        return ['0', '1', '2'];
      },
      () => 64,
    );
    expect(await value('process_open_fds')).toBe('2');
    out = true;
    expect(await value('process_open_fds')).toBe('64');
  });

  it('show NaN when the count is not known: the system table full (ENFILE), or no limit known', async () => {
    const enfile = registryWith(
      () => {
        throw errno('ENFILE');
      },
      () => 64,
    );
    expect(await enfile('process_open_fds')).toMatch(/^nan$/i);
    const unknown = registryWith(
      () => {
        throw errno('EMFILE');
      },
      () => undefined,
    );
    expect(await unknown('process_open_fds')).toMatch(/^nan$/i);
  });

  it('read the soft limit at each scrape: a limit changed on the running process is shown', async () => {
    let limit = 1024;
    const value = registryWith(
      () => [],
      () => limit,
    );
    expect(await value(MAX_FDS)).toBe('1024');
    limit = 4096;
    expect(await value(MAX_FDS)).toBe('4096');
  });
});
