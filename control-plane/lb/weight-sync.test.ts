import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { UnknownBackendError } from './haproxy-runtime.js';
import { WeightSync } from './weight-sync.js';

const HEADER =
  '1\n# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change\n';

/** A stand-in for HAProxy's runtime socket: backend `api` with servers api-1 (weight 1) and api-2 (weight 2). */
function fakeHaproxy(): { socketPath: string; commands: string[]; server: Server } {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'sg-haproxy-')), 'sock');
  const commands: string[] = [];
  const server = createServer((sock) => {
    sock.setEncoding('utf8');
    sock.once('data', (line: string) => {
      const command = line.trim();
      commands.push(command);
      if (command === 'show servers state api')
        sock.end(`${HEADER}4 api 1 api-1 127.0.0.1 2 0 1 1 7\n4 api 2 api-2 127.0.0.1 2 0 2 2 7\n\n`);
      else if (command.startsWith('show servers state ')) sock.end("Can't find backend.\n\n");
      else sock.end('\n');
    });
  });
  server.listen(socketPath);
  return { socketPath, commands, server };
}

let open: Server | undefined;
afterEach(() => {
  open?.close();
  open = undefined;
});

function sync(backend = 'api') {
  const fake = fakeHaproxy();
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
  it('names the weighted instances without a server, once per change of that set', async () => {
    const { ws, warnings, commands } = sync();
    const first = await ws.reconcile(
      new Map([
        ['api-1', 3],
        ['ct-ghost', 1],
      ]),
    );
    expect(first).toEqual({ sent: ['set server api/api-1 weight 3'], missing: ['ct-ghost'] });
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
});
