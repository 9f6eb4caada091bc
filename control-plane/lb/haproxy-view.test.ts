import { describe, expect, it } from 'vitest';
import type { InstanceInfo } from '../../src/config/schema.js';
import { type ServerState, serverStateWord } from './haproxy-runtime.js';
import { corsDifference, differences, fallbackDifferences, fallbackInUse } from './haproxy-view.js';

const server = (name: string, over: Partial<ServerState> = {}): ServerState => ({
  name,
  weight: 1,
  initialWeight: 1,
  admin: 0,
  draining: false,
  maintenance: false,
  running: true,
  ...over,
});
const info: InstanceInfo = { url: 'http://x', configRevision: 1, startedAt: 'now' };

describe('differences (status: HAProxy next to etcd)', () => {
  it('names each server HAProxy sends fewer requests than etcd asks, and a weighted instance without one', () => {
    const snap = {
      lbWeights: new Map([
        ['a', 1],
        ['b', 1],
        ['c', 1],
        ['d', 5],
        ['e', 2],
        ['f', 0],
        ['ghost', 3],
      ]),
      instances: new Map([['ghost', info]]),
    };
    expect(
      differences(
        [
          server('a'),
          server('b', { maintenance: true }),
          server('c', { draining: true }),
          server('d', { running: false, weight: 5 }),
          server('e', { weight: 1 }),
          // drained by its agent as it shut down, and gone since
          server('h', { draining: true, running: false }),
          // weight 0 in etcd: drained on purpose, whatever HAProxy shows
          server('f', { maintenance: true, weight: 0 }),
          // no key: the haproxy.cfg weight is asked
          server('g', { weight: 0, initialWeight: 2 }),
        ],
        snap,
      ),
    ).toEqual([
      'b is in maintenance in HAProxy: it gets no requests',
      'c is drained in HAProxy: it gets no new requests',
      'd is down in HAProxy (its checks fail): it gets no requests',
      'e has weight 1 in HAProxy, 2 in etcd (its agent lowers it while the instance lags or its breakers are open)',
      'h is down in HAProxy (its checks fail): it gets no requests',
      'g has weight 0 in HAProxy (2 in haproxy.cfg, no key in etcd): it gets no requests',
      "ghost is registered with weight 3 but has no server in HAProxy's backend: it gets no requests",
    ]);
  });

  it("explains a weight above etcd's as not applied yet, never as the agent lowering it", () => {
    const snap = {
      lbWeights: new Map([
        ['api-1', 3],
        ['api-2', 3],
      ]),
      instances: new Map(),
    };
    expect(
      differences(
        [
          server('api-1', { weight: 10 }),
          server('api-2', { weight: 3 }),
          // no key: the haproxy.cfg weight is asked, and HAProxy has more
          server('api-3', { weight: 4, initialWeight: 1 }),
        ],
        snap,
      ),
    ).toEqual([
      "api-1 has weight 10 in HAProxy, 3 in etcd (not applied yet: lb sync sets it and the instance's agent reports it at its next check; is `lb sync --watch` running?)",
      "api-3 has weight 4 in HAProxy, 1 in haproxy.cfg, no key in etcd (not applied yet: lb sync sets it and the instance's agent reports it at its next check; is `lb sync --watch` running?)",
    ]);
  });

  it('names a drain in etcd that HAProxy has not applied, and takes the weight the agent gives for the one asked', () => {
    const snap = {
      lbWeights: new Map([
        ['api-1', 0],
        ['api-2', 1],
        ['api-3', 0],
      ]),
      instances: new Map(),
    };
    expect(
      differences(
        [
          // before: nothing, though the drained instance still got requests
          server('api-1', { weight: 10 }),
          // weight 1 of initial weight 200 is `up 1%`, which HAProxy makes 2: applied, no line
          server('api-2', { weight: 2, initialWeight: 200 }),
          // drained and at 0: as asked
          server('api-3', { weight: 0 }),
        ],
        snap,
      ),
    ).toEqual([
      'api-1 has weight 10 in HAProxy, 0 in etcd: it still gets requests (not applied yet: is `lb sync --watch` running?)',
    ]);
  });
});

describe('corsDifference (status: HAProxy’s CORS map next to etcd)', () => {
  it('says nothing when the map lists etcd’s origins in any order, or there is neither map nor origin', () => {
    expect(
      corsDifference(['https://b.example', 'https://a.example'], ['https://a.example', 'https://b.example']),
    ).toEqual([]);
    expect(corsDifference([], [])).toEqual([]);
    expect(corsDifference(undefined, [])).toEqual([]);
  });

  it('names both lists when they differ, and a missing map while origins are listed', () => {
    expect(corsDifference(['https://a.example'], ['*'])).toEqual([
      "HAProxy's cors-origins.map lists https://a.example, etcd *: its own answers follow the map until lb sync runs",
    ]);
    expect(corsDifference(['https://a.example', 'https://b.example'], [])).toEqual([
      "HAProxy's cors-origins.map lists https://a.example, https://b.example, etcd no origin: its own answers follow the map until lb sync runs",
    ]);
    expect(corsDifference(undefined, ['https://a.example'])).toEqual([
      'HAProxy has no cors-origins.map (its config predates it): its own answers carry no CORS header',
    ]);
  });
});

describe('fallbackDifferences (status: a maint or drain not held in the fallback)', () => {
  // a server of weight 10 with these admin bits (0x01 maint, 0x08 drain)
  const at = (name: string, admin: number, running = true) =>
    server(name, {
      weight: 10,
      initialWeight: 10,
      admin,
      draining: (admin & 0x08) !== 0,
      maintenance: (admin & 0x01) !== 0,
      running,
    });

  it('names a server whose maint or drain differs between the backends, and nothing when they agree', () => {
    expect(
      fallbackDifferences(
        'api',
        [at('api-1', 0x01), at('api-2', 0), at('api-3', 0x08)],
        [at('api-1', 0), at('api-2', 0x01), at('api-3', 0x08)],
      ),
    ).toEqual([
      'api-1 is in maintenance in api but not in api_fallback: it gets requests there once api has no usable server (is `lb sync --watch` running?)',
      'api-2 is in maintenance in api_fallback but not in api: it gets no requests there once api has no usable server (is `lb sync --watch` running?)',
    ]);
  });

  it("says nothing of an instance's own drain as it shuts down (down in the fallback)", () => {
    expect(fallbackDifferences('api', [at('api-1', 0)], [at('api-1', 0x08, false)])).toEqual([]);
  });
});

describe('fallbackInUse (status: the main backend empty)', () => {
  const at = (name: string, over: Partial<ServerState> = {}) =>
    server(name, { weight: 10, initialWeight: 10, ...over });

  it('says nothing while the main backend has a usable server, or there is no fallback', () => {
    expect(
      fallbackInUse('api', [at('api-1'), at('api-2', { running: false })], [at('api-1'), at('api-2')]),
    ).toEqual([]);
    expect(fallbackInUse('api', [at('api-1', { running: false })], [])).toEqual([]);
    // in its slowstart after coming up again, HAProxy sends it requests already
    expect(fallbackInUse('api', [at('api-1', { running: false, starting: true })], [at('api-1')])).toEqual(
      [],
    );
  });

  it('names the fallback servers that serve once none of the main backend is usable, or the 503', () => {
    const main = [at('api-1', { maintenance: true, admin: 1 }), at('api-2', { running: false })];
    expect(fallbackInUse('api', main, [at('api-1', { maintenance: true, admin: 1 }), at('api-2')])).toEqual([
      'api has no usable server: HAProxy sends requests to api_fallback, to api-2',
    ]);
    expect(
      fallbackInUse('api', main, [at('api-1', { maintenance: true, admin: 1 }), at('api-2', { weight: 0 })]),
    ).toEqual(['api has no usable server, nor has api_fallback: HAProxy answers 503']);
  });
});

describe('serverStateWord', () => {
  it('calls a drained server whose checks fail down (an instance that drained itself and exited)', () => {
    expect(serverStateWord(server('a'))).toBe('up');
    expect(serverStateWord(server('a', { draining: true }))).toBe('drain');
    expect(serverStateWord(server('a', { draining: true, running: false }))).toBe('down');
    expect(serverStateWord(server('a', { draining: true, running: false, starting: true }))).toBe('drain');
    expect(serverStateWord(server('a', { maintenance: true, running: false }))).toBe('maint');
    expect(serverStateWord(server('a', { running: false }))).toBe('down');
  });
});
