import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnknownBackendError } from './haproxy-runtime.js';
import { WeightSync } from './weight-sync.js';

const HEADER =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n';

interface FakeServer {
  name: string;
  /** srv_admin_state */
  admin: number;
  /** srv_uweight */
  weight: number;
  /** srv_iweight, the weight in the config file */
  initial: number;
}

/**
 * A stand-in for HAProxy's runtime socket: backend `api` with servers api-1 (weight 1) and api-2
 * (weight 2) unless `servers` says otherwise. `set server api/<name> weight N` changes its weight,
 * as HAProxy does; `state ready|drain|maint` changes its admin bits as HAProxy does (and must not be
 * sent by WeightSync).
 */
function fakeHaproxy(
  servers: FakeServer[] = defaultServers(),
  /** servers of backend `api_fallback`, which the fake has only when given */
  fallback?: FakeServer[],
): {
  socketPath: string;
  commands: string[];
  server: Server;
} {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'sg-haproxy-')), 'sock');
  const commands: string[] = [];
  const server = createServer((sock) => {
    sock.setEncoding('utf8');
    sock.once('data', (line: string) => {
      const command = line.trim();
      commands.push(command);
      const set = /^set server (api|api_fallback)\/(\S+) (weight|state) (\S+)$/.exec(command)?.slice(1);
      const list = set?.[0] === 'api' ? servers : fallback;
      const target = set && list?.find((s) => s.name === set[1]);
      const shown = /^show servers state (api|api_fallback)$/.exec(command)?.[1];
      const rows = shown === 'api' ? servers : shown ? fallback : undefined;
      if (shown && rows)
        sock.end(
          `${HEADER}${rows.map((s, i) => `4 ${shown} ${i + 1} ${s.name} 127.0.0.1 2 ${s.admin} ${s.weight} ${s.initial} 7\n`).join('')}\n`,
        );
      else if (command.startsWith('show servers state ')) sock.end("Can't find backend.\n\n");
      else if (set && !target) sock.end('No such server.\n\n');
      else if (set && target && set[2] === 'weight') {
        target.weight = Number(set[3]);
        sock.end('\n');
      } else if (set && target) {
        // srv_adm_set_ready / _drain / _maint
        target.admin &= ~(FMAINT | FDRAIN);
        if (set[3] === 'drain') target.admin |= FDRAIN;
        if (set[3] === 'maint') target.admin |= FMAINT;
        sock.end('\n');
      } else sock.end('\n');
    });
  });
  server.listen(socketPath);
  return { socketPath, commands, server };
}

const FMAINT = 0x01;
const FDRAIN = 0x08;
function defaultServers(): FakeServer[] {
  return [
    { name: 'api-1', admin: 0, weight: 1, initial: 1 },
    { name: 'api-2', admin: 0, weight: 2, initial: 2 },
  ];
}

let open: Server | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

function sync(backend = 'api', servers?: FakeServer[], fallback?: FakeServer[]) {
  const fake = fakeHaproxy(servers, fallback);
  open = fake.server;
  const warnings: string[] = [];
  const ws = new WeightSync({
    socketPath: fake.socketPath,
    backend,
    log: () => {},
    warn: (l) => warnings.push(l),
  });
  return { ws, warnings, commands: fake.commands };
}

describe('WeightSync', () => {
  it('gives the fallback backend the same weights, unsaid, and the same `only` and `held`', async () => {
    const fallback = defaultServers();
    const lines: string[] = [];
    const fake = fakeHaproxy(defaultServers(), fallback);
    open = fake.server;
    const ws = new WeightSync({
      socketPath: fake.socketPath,
      backend: 'api',
      log: (l) => lines.push(l),
      warn: () => {},
    });
    const result = await ws.reconcile(new Map([['api-1', 0]]), new Set(['api-2']));
    // api-2 is held: left alone in both; api-1 drained in both, only the main one's said
    expect(fallback.map((s) => s.weight)).toEqual([0, 2]);
    expect(result.sent).toEqual(['set server api/api-1 weight 0']);
    expect(lines).toEqual(['applied: set server api/api-1 weight 0']);
    expect(fake.commands).toContain('set server api_fallback/api-1 weight 0');
    await ws.reconcile(
      new Map([
        ['api-1', 5],
        ['api-2', 9],
      ]),
      undefined,
      new Set(['api-2']),
    );
    expect(fallback.map((s) => s.weight)).toEqual([0, 9]);
  });

  it('with `only`, sets those servers alone and leaves the others as they are', async () => {
    const servers = defaultServers();
    servers[1]!.weight = 1; // api-2 lowered by its agent
    const { ws, commands } = sync('api', servers);
    const result = await ws.reconcile(
      new Map([
        ['api-1', 7],
        ['api-2', 2],
      ]),
      undefined,
      new Set(['api-1']),
    );
    expect(result.sent).toEqual(['set server api/api-1 weight 7']);
    expect(commands.filter((c) => c.startsWith('set server'))).toEqual(['set server api/api-1 weight 7']);
    expect(servers[1]!.weight).toBe(1);
  });

  it('names the weighted instances without a server, once per change of that set', async () => {
    const { ws, warnings, commands } = sync();
    const first = await ws.reconcile(
      new Map([
        ['api-1', 3],
        ['ct-ghost', 1],
      ]),
    );
    expect(first).toEqual({
      sent: ['set server api/api-1 weight 3'],
      missing: ['ct-ghost'],
      unweighted: ['api-2'],
      held: [],
    });
    expect(commands).toContain('set server api/api-1 weight 3');
    expect(warnings).toEqual(['no server in haproxy backend api for lb/weights/ct-ghost; not applied']);
    // the same set again (every tick of --watch): no new warning
    await ws.reconcile(
      new Map([
        ['api-1', 1],
        ['ct-ghost', 2],
      ]),
    );
    expect(warnings).toHaveLength(1);
    await ws.reconcile(
      new Map([
        ['ct-ghost', 2],
        ['ct-other', 1],
      ]),
    );
    expect(warnings.at(-1)).toBe(
      'no server in haproxy backend api for lb/weights/ct-ghost, lb/weights/ct-other; not applied',
    );
    // gone, then back: said again
    await ws.reconcile(new Map([['api-2', 2]]));
    await ws.reconcile(
      new Map([
        ['ct-ghost', 2],
        ['ct-other', 1],
      ]),
    );
    expect(warnings).toHaveLength(3);
  });

  it('throws UnknownBackendError for a backend HAProxy does not have', async () => {
    const { ws } = sync('bogus');
    await expect(ws.reconcile(new Map([['api-1', 1]]))).rejects.toBeInstanceOf(UnknownBackendError);
  });

  it('gives a server without a key its configured weight (srv_iweight): a deleted key is undone', async () => {
    const servers = defaultServers();
    const { ws, commands } = sync('api', servers);
    await ws.reconcile(
      new Map([
        ['api-1', 1],
        ['api-2', 4],
      ]),
    );
    expect(servers[1]!.weight).toBe(4);
    // lb/weights/api-2 deleted
    const r = await ws.reconcile(new Map([['api-1', 1]]));
    expect(r).toEqual({
      sent: ['set server api/api-2 weight 2'],
      missing: [],
      unweighted: ['api-2'],
      held: [],
    });
    expect(servers[1]!.weight).toBe(2);
    // then nothing left to do
    expect((await ws.reconcile(new Map([['api-1', 1]]))).sent).toEqual([]);
    expect(commands.filter((c) => c.startsWith('set server') && c.includes(' state '))).toEqual([]);
  });

  it('leaves a held server (its key rejected, no value in force) at the weight it has, not its configured one', async () => {
    const servers = defaultServers();
    servers[1]!.weight = 7; // the last good value, which HAProxy got before the key went bad
    const logged: string[] = [];
    const fake = fakeHaproxy(servers);
    open = fake.server;
    const ws = new WeightSync({
      socketPath: fake.socketPath,
      backend: 'api',
      log: (l) => logged.push(l),
      warn: () => {},
    });
    const r = await ws.reconcile(new Map([['api-1', 1]]), new Set(['api-2']));
    expect(r).toEqual({ sent: [], missing: [], unweighted: [], held: ['api-2'] });
    expect(servers[1]!.weight).toBe(7);
    expect(fake.commands.filter((c) => c.startsWith('set server'))).toEqual([]);
    expect(logged.join('\n')).not.toContain('no lb/weights/api-2');
    // a value in force wins over `held`
    const again = await ws.reconcile(new Map([['api-2', 3]]), new Set(['api-2']));
    expect(again.sent).toContain('set server api/api-2 weight 3');
  });

  it('drains by weight 0 and ends that drain when the key is deleted, never by "state"', async () => {
    const servers = defaultServers();
    const { ws, commands } = sync('api', servers);
    expect((await ws.reconcile(new Map([['api-2', 0]]))).sent).toEqual(['set server api/api-2 weight 0']);
    expect(servers[1]).toMatchObject({ weight: 0, admin: 0 });
    expect((await ws.reconcile(new Map())).sent).toEqual(['set server api/api-2 weight 2']);
    expect(servers[1]).toMatchObject({ weight: 2, admin: 0 });
    expect(commands.filter((c) => c.startsWith('set server') && c.includes(' state '))).toEqual([]);
  });

  it('leaves a drain or maintenance set by hand or by the agent as it is, whatever the weights', async () => {
    const servers: FakeServer[] = [
      { name: 'api-1', admin: FDRAIN, weight: 1, initial: 1 }, // drained by hand, or by its agent
      { name: 'api-2', admin: FMAINT, weight: 2, initial: 2 }, // maintenance by hand
    ];
    const { ws, commands } = sync('api', servers);
    await ws.reconcile(
      new Map([
        ['api-1', 3],
        ['api-2', 0],
      ]),
    );
    expect(servers.map((s) => [s.admin, s.weight])).toEqual([
      [FDRAIN, 3],
      [FMAINT, 0],
    ]);
    // keys deleted: configured weights, the drain and the maintenance kept
    await ws.reconcile(new Map());
    expect(servers.map((s) => [s.admin, s.weight])).toEqual([
      [FDRAIN, 1],
      [FMAINT, 2],
    ]);
    expect(commands.filter((c) => c.startsWith('set server') && c.includes(' state '))).toEqual([]);
  });
});
