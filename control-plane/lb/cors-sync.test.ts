import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CorsSync, corsMapId, mapKeys } from './cors-sync.js';

/**
 * A stand-in for HAProxy 2.6's runtime socket with one map, `#3`, loaded from `file`: `show map`,
 * `show map #3`, and `prepare`/`add @v`/`commit @v` as HAProxy 2.6.12 does them (checked on a real
 * one): `prepare` opens version next+1; an `add` to any version up to the last prepared one is
 * taken (to one already committed over too, its entry then orphaned); `commit @v` of a version at
 * or below the one in force is refused "Version number out of range.", else makes it the one in
 * force and drops older versions (later prepared ones stay). `beforeCommit` runs once, before the
 * first commit is answered: another writer at that moment. `rejectAdd` answers every `add` with an
 * error.
 */
function fakeHaproxy(
  file: string | undefined,
  opts: { rejectAdd?: boolean; beforeCommit?: (other: Writer) => void } = {},
) {
  const socketPath = join(mkdtempSync(join(tmpdir(), 'sg-cors-sync-')), 'sock');
  const commands: string[] = [];
  const versions = new Map<number, string[]>();
  let current = 0;
  let next = 0;
  let live: string[] = [];
  const prepare = () => {
    next += 1;
    versions.set(next, []);
    return next;
  };
  const commit = (v: number): string => {
    if (v <= current) return 'Version number out of range.';
    live = versions.get(v) ?? [];
    current = v;
    for (const k of [...versions.keys()]) if (k <= v) versions.delete(k);
    return '';
  };
  const other: Writer = {
    write(list) {
      const v = prepare();
      versions.get(v)!.push(...list);
      commit(v);
    },
  };
  let beforeCommit = opts.beforeCommit;
  const server = createServer((sock) => {
    sock.setEncoding('utf8');
    sock.once('data', (line: string) => {
      const command = line.trim();
      commands.push(command);
      const add = /^add map @(\d+) #3 (\S+) (\S+)$/.exec(command);
      const commitCmd = /^commit map @(\d+) #3$/.exec(command);
      if (command === 'show map') {
        sock.end(
          `# id (file) description\n${file === undefined ? '' : `3 (${file}) pattern loaded from file '${file}' used by map at file 'h.cfg' line 42. curr_ver=${current} next_ver=${next} entry_cnt=${live.length}\n`}\n`,
        );
      } else if (command === 'show map #3') {
        sock.end(`${live.map((k, i) => `0x55f26dfbd9a${i} ${k} ${k}\n`).join('')}\n`);
      } else if (command === 'prepare map #3') {
        sock.end(`New version created: ${prepare()}\n\n`);
      } else if (add && opts.rejectAdd) {
        sock.end('Unknown version.\n\n');
      } else if (add && Number(add[1]) <= next) {
        versions.get(Number(add[1]))?.push(add[2]!);
        sock.end('\n');
      } else if (add) {
        sock.end("Version number in the future, please use 'prepare map' before.\n\n");
      } else if (commitCmd) {
        const hook = beforeCommit;
        beforeCommit = undefined;
        hook?.(other);
        sock.end(`${commit(Number(commitCmd[1]))}\n\n`);
      } else sock.end('Unknown command.\n\n');
    });
  });
  server.listen(socketPath);
  servers.push(server);
  return { socketPath, commands, live: () => live };
}

/** another lb sync, writing the map whole between two commands of the one under test */
interface Writer {
  write(list: string[]): void;
}

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function sync(socketPath: string) {
  const logs: string[] = [];
  const warnings: string[] = [];
  const cors = new CorsSync({ socketPath, log: (l) => logs.push(l), warn: (l) => warnings.push(l) });
  return { cors, logs, warnings };
}

describe('corsMapId / mapKeys (HAProxy 2.6 answers)', () => {
  it("finds the map by its file's name, wherever it lies, and nothing else", () => {
    const show = `# id (file) description
0 (/etc/haproxy/hosts.map) pattern loaded from file '/etc/haproxy/hosts.map' used by map at file 'h.cfg' line 9. curr_ver=0 next_ver=0 entry_cnt=2
4 (/srv/stack/cors-origins.map) pattern loaded from file '/srv/stack/cors-origins.map' used by map at file 'h.cfg' line 42. curr_ver=0 next_ver=0 entry_cnt=0
`;
    expect(corsMapId(show)).toBe('#4');
    expect(corsMapId(show.replace(/cors-origins/g, 'my-cors-origins'))).toBeUndefined();
    expect(corsMapId('# id (file) description\n\n')).toBeUndefined();
  });

  it('reads the keys of `show map #id`', () => {
    expect(mapKeys('0x55f26dfbd9a0 https://a.example https://a.example\n0x55f26dfc2790 * *\n\n')).toEqual([
      'https://a.example',
      '*',
    ]);
    expect(mapKeys('\n')).toEqual([]);
  });
});

describe('CorsSync', () => {
  it('replaces the whole map in one committed version, and only when the origins differ', async () => {
    const haproxy = fakeHaproxy('/srv/stack/cors-origins.map');
    const { cors, logs } = sync(haproxy.socketPath);

    expect(await cors.reconcile(['https://a.example', 'http://localhost:5173'])).toEqual({
      origins: ['https://a.example', 'http://localhost:5173'],
      changed: true,
    });
    expect(haproxy.live()).toEqual(['https://a.example', 'http://localhost:5173']);
    expect(haproxy.commands).toEqual([
      'show map',
      'show map #3',
      'prepare map #3',
      'add map @1 #3 https://a.example https://a.example',
      'add map @1 #3 http://localhost:5173 http://localhost:5173',
      'commit map @1 #3',
    ]);
    expect(logs).toEqual([
      'applied: cors/allowed_origins → haproxy map cors-origins.map: https://a.example, http://localhost:5173',
    ]);

    // the same origins in another order: two reads, nothing written
    haproxy.commands.length = 0;
    expect((await cors.reconcile(['http://localhost:5173', 'https://a.example'])).changed).toBe(false);
    expect(haproxy.commands).toEqual(['show map', 'show map #3']);

    // `*`, then none: the old entries go with the commit
    expect((await cors.reconcile(['*'])).changed).toBe(true);
    expect(haproxy.live()).toEqual(['*']);
    expect((await cors.reconcile([])).changed).toBe(true);
    expect(haproxy.live()).toEqual([]);
    expect(haproxy.commands.slice(-2)).toEqual(['prepare map #3', 'commit map @3 #3']);
    expect(logs.at(-1)).toBe('applied: cors/allowed_origins → haproxy map cors-origins.map: no origin');
  });

  it('warns once, and writes nothing, when HAProxy has no such map', async () => {
    const haproxy = fakeHaproxy(undefined);
    const { cors, warnings } = sync(haproxy.socketPath);
    expect(await cors.reconcile(['https://a.example'])).toEqual({ origins: undefined, changed: false });
    expect(await cors.reconcile(['https://a.example'])).toEqual({ origins: undefined, changed: false });
    expect(warnings).toEqual([
      'haproxy has no map cors-origins.map (its config predates it): its own answers (503, 504, 429, …) carry no CORS header; re-render and restart it',
    ]);
    expect(haproxy.commands).toEqual(['show map', 'show map']);
  });

  it('throws on an error answer, before committing a partial list', async () => {
    const haproxy = fakeHaproxy('cors-origins.map', { rejectAdd: true });
    const { cors, logs } = sync(haproxy.socketPath);
    await expect(cors.reconcile(['https://a.example'])).rejects.toThrow(
      'haproxy runtime API: add of https://a.example to map #3: Unknown version.',
    );
    expect(haproxy.commands.some((c) => c.startsWith('commit'))).toBe(false);
    expect(haproxy.live()).toEqual([]);
    expect(logs).toEqual([]);
  });

  it('loses a race to another writer of the same list without an error, and wins one against another list', async () => {
    const same = fakeHaproxy('cors-origins.map', { beforeCommit: (o) => o.write(['https://a.example']) });
    const a = sync(same.socketPath);
    expect(await a.cors.reconcile(['https://a.example'])).toEqual({
      origins: ['https://a.example'],
      changed: false,
    });
    expect(same.live()).toEqual(['https://a.example']);
    expect(same.commands.slice(-3)).toEqual(['commit map @1 #3', 'show map', 'show map #3']);
    expect(a.logs).toEqual([]);

    const other = fakeHaproxy('cors-origins.map', { beforeCommit: (o) => o.write(['https://b.example']) });
    const b = sync(other.socketPath);
    expect(await b.cors.reconcile(['https://a.example'])).toEqual({
      origins: ['https://a.example'],
      changed: true,
    });
    expect(other.live()).toEqual(['https://a.example']);
    expect(other.commands.filter((c) => c.startsWith('commit'))).toEqual([
      'commit map @1 #3',
      'commit map @3 #3',
    ]);
  });

  it('refuses, before preparing anything, an origin the runtime API would not read as one word', async () => {
    const haproxy = fakeHaproxy('cors-origins.map');
    const { cors } = sync(haproxy.socketPath);
    for (const bad of [
      'http://a;b.example',
      'http://a b.example',
      'http://a\\b.example',
      'https://a.example/x',
    ])
      await expect(cors.reconcile(['https://ok.example', bad]), bad).rejects.toThrow(
        `cors/allowed_origins: ${JSON.stringify(bad)} cannot be written to HAProxy's map`,
      );
    expect(haproxy.commands).toEqual([]);
  });

  it('throws when HAProxy is not there (callers retry)', async () => {
    const { cors } = sync(join(tmpdir(), 'sg-no-such-haproxy.sock'));
    await expect(cors.reconcile([])).rejects.toThrow(/ENOENT|ECONNREFUSED/);
  });
});
