/**
 * etcd with authentication enabled. The local stack's etcd is shared by the other tests, so auth
 * is never enabled there: this test runs etcds of its own (Debian's `etcd`, the stack's binary),
 * on free ports with data under os.tmpdir(), SIGKILLed and removed in afterAll (and on the test
 * process' exit, should it die first).
 *
 * - `simple`: etcd's default tokens. root, and the roles and users of docs/configuration.md ("etcd
 *   authentication": the commands there, on PREFIX), then `auth enable`. Each process with its
 *   user's credentials reads, writes (where its role lets it) and watches; without them, or with
 *   a wrong password, each names the refusal ("etcd refused: authentication …", the variables to
 *   set), where before it said "etcd unreachable" (the CLI: exit 2) or, for the API, nothing.
 * - `jwt`: `--auth-token=jwt` (etcd's advice for production), auth enabled only after a client
 *   with credentials is running (etcd-token-refresh.ts): it goes on working through `auth enable`
 *   and through an auth change that makes its token stale ("revision of auth store is old", which
 *   etcd3 alone never recovered from), its watch included.
 */
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Etcd3, IWatchResponse } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { etcdAuthRefusal } from '../src/config/etcd-auth-refusal.js';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { EtcdConfigStore } from '../src/config/etcd-config-store.js';
import { recordingLogger } from '../src/testing/recording-logger.js';
import { REPO_ROOT } from '../stack/paths.js';
import { ctl } from './helpers/ctl.js';
import { startEntry, stopStartedEntries } from './helpers/start-entry.js';
import { waitFor } from './helpers/wait-for.js';

const PREFIX = '/sg-auth/';
/** the users of docs/configuration.md, each with the role of the same name */
const API = 'shardgate-api';
const READER = 'shardgate-reader';
const CTL = 'shardgate-ctl';
const PASSWORD = randomBytes(12).toString('base64url');
const creds = (username: string) => ({ username, password: PASSWORD });
const ROOT_PASSWORD = randomBytes(12).toString('base64url');

const dir = mkdtempSync(join(tmpdir(), 'shardgate-etcd-auth-'));
const children: ChildProcess[] = [];
const clients: Etcd3[] = [];
const killAll = () => {
  for (const child of children)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
};
process.once('exit', killAll);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** an etcd of this test's own; resolves its client URL once it answers /health */
async function startEtcd(name: string, extraArgs: string[] = []): Promise<string> {
  const [client, peer] = [await freePort(), await freePort()];
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  // etcd reads ETCD_* variables too: none of the shell's may reconfigure it (as stack/etcd.ts)
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD')));
  const child = spawn(
    'etcd',
    [
      `--name=${name}`,
      `--data-dir=${join(dir, name)}`,
      `--listen-client-urls=${url}`,
      `--advertise-client-urls=${url}`,
      `--listen-peer-urls=${peerUrl}`,
      `--initial-advertise-peer-urls=${peerUrl}`,
      `--initial-cluster=${name}=${peerUrl}`,
      '--log-level=warn',
      ...extraArgs,
    ],
    { env, stdio: 'ignore' },
  );
  children.push(child);
  await waitFor(async () => (await fetch(`${url}/health`)).ok, { timeoutMs: 15_000, what: `etcd ${name}` });
  return url;
}

/** etcdctl against `url`, as root once auth is on */
function etcdctl(url: string, args: string[], { root = true } = {}): string {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('ETCD')));
  const auth = root ? ['--user', `root:${ROOT_PASSWORD}`] : [];
  return execFileSync('etcdctl', [`--endpoints=${url}`, ...auth, ...args], { env, encoding: 'utf8' });
}

/**
 * root, and the roles and users of docs/configuration.md ("etcd authentication"), its commands
 * with PREFIX for `/shardgate/` (each user's password PASSWORD)
 */
function createUsers(url: string): void {
  const run = (...args: string[]) => etcdctl(url, args, { root: false });
  const base = PREFIX.replace(/\/$/, '');
  run('user', 'add', `root:${ROOT_PASSWORD}`);
  run('role', 'add', 'root');
  run('user', 'grant-role', 'root', 'root');
  run('role', 'add', API);
  run('role', 'grant-permission', API, 'read', '--prefix', PREFIX);
  run('role', 'grant-permission', API, 'readwrite', '--prefix', `${PREFIX}instances/`);
  run('role', 'grant-permission', API, 'readwrite', `${PREFIX}runtime/cache_epoch`);
  run('role', 'grant-permission', API, 'readwrite', '--prefix', `${PREFIX}runtime/tenant_cache_epoch/`);
  run('role', 'add', READER);
  run('role', 'grant-permission', READER, 'read', '--prefix', PREFIX);
  run('role', 'add', CTL);
  for (const p of [PREFIX, `${base}.locks/`, `${base}.moves/`, `${base}.removed/`])
    run('role', 'grant-permission', CTL, 'readwrite', '--prefix', p);
  for (const user of [API, READER, CTL]) {
    run('user', 'add', `${user}:${PASSWORD}`);
    run('user', 'grant-role', user, user);
  }
}

function client(url: string, auth?: { username: string; password: string }): Etcd3 {
  const c = createEtcdClient({ endpoints: [url], auth });
  clients.push(c);
  return c;
}

function failure(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    () => expect.fail('etcd accepted the call'),
    (error: unknown) => error,
  );
}

afterAll(() => {
  stopStartedEntries();
  for (const c of clients) c.close();
  killAll();
  rmSync(dir, { recursive: true, force: true });
});

describe('etcd with auth enabled (simple tokens)', () => {
  let url: string;
  const ctlEnv = (username: string, password: string) => ({
    SHARDGATE_ETCD_ENDPOINTS: url,
    SHARDGATE_ETCD_PREFIX: PREFIX,
    SHARDGATE_ETCD_USERNAME: username,
    SHARDGATE_ETCD_PASSWORD: password,
  });

  beforeAll(async () => {
    url = await startEtcd('simple');
    createUsers(url);
    etcdctl(url, ['auth', 'enable'], { root: false });
  });

  it('a client with the credentials reads, writes and watches under its prefix', async () => {
    const etcd = client(url, creds(CTL));
    await etcd.put(`${PREFIX}a`).value('1');
    expect(await etcd.get(`${PREFIX}a`).string()).toBe('1');
    const seen: string[] = [];
    const watcher = await etcd.watch().prefix(PREFIX).create();
    watcher.on('data', (r: IWatchResponse) => seen.push(...r.events.map((e) => e.kv.key.toString())));
    etcdctl(url, ['put', `${PREFIX}b`, '2']);
    await waitFor(() => seen.includes(`${PREFIX}b`), { what: 'the watch event' });
    await watcher.cancel();
    // outside its role: a permission refusal, named as one
    const denied = await failure(etcd.get('/elsewhere').string());
    expect(etcdAuthRefusal(denied)).toMatch(/^etcd refused: permission denied: the roles of the etcd user/);
    // the API's role writes only its registration and the cache epochs; the reader's nothing
    const api = client(url, creds(API));
    await api.put(`${PREFIX}runtime/cache_epoch`).value('7');
    await api.put(`${PREFIX}runtime/tenant_cache_epoch/t1`).value('7');
    expect(etcdAuthRefusal(await failure(api.put(`${PREFIX}shards/x`).value('{}').exec()))).toMatch(
      /^etcd refused: permission denied/,
    );
    const reader = client(url, creds(READER));
    expect(await reader.get(`${PREFIX}a`).string()).toBe('1');
    expect(etcdAuthRefusal(await failure(reader.put(`${PREFIX}a`).value('2').exec()))).toMatch(
      /^etcd refused: permission denied/,
    );
  });

  it('without credentials, or with a wrong password, the refusal is named as one', async () => {
    const none = await failure(client(url).get(`${PREFIX}a`).string());
    expect(String(none)).toMatch(/user name is empty/);
    expect(etcdAuthRefusal(none)).toBe(
      "etcd refused: authentication required (etcd's auth is enabled and the call carried no user token): set, or check, SHARDGATE_ETCD_USERNAME and SHARDGATE_ETCD_PASSWORD",
    );
    const wrong = await failure(
      client(url, { username: API, password: 'wrong-password' }).get(`${PREFIX}a`).string(),
    );
    expect(etcdAuthRefusal(wrong)).toMatch(
      /^etcd refused: authentication failed \(no such user, or a wrong password\)/,
    );
  });

  it("the config store (API, worker, lb sync) reports it at /health/config's lastError and in its log line", async () => {
    const { logger, lines } = recordingLogger();
    const store = new EtcdConfigStore({ client: client(url), prefix: PREFIX, logger });
    void store.start();
    try {
      const status = await waitFor(() => (store.status().lastError ? store.status() : undefined), {
        what: 'a failed read',
      });
      expect(status).toMatchObject({ loaded: false, connected: false });
      expect(status.lastError).toMatch(/^etcd refused: authentication required .*SHARDGATE_ETCD_USERNAME/);
      expect(lines.find((l) => l.level === 'warn')?.msg).toMatch(
        /^etcd refused: authentication required .*; serving last good config$/,
      );
    } finally {
      await store.close();
    }
  });

  it('shardgate-ctl works with SHARDGATE_ETCD_USERNAME/PASSWORD, and without them says authentication (exit 1)', () => {
    const init = ctl(['init'], ctlEnv(CTL, PASSWORD));
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    const get = ctl(['breakers', 'get', '--json'], ctlEnv(READER, PASSWORD));
    expect(get.code).toBe(0);
    expect(JSON.parse(get.stdout)).toBeTruthy();

    // the outside check's case: `status` exited 2 "etcd unreachable at …: etcdserver: user name is empty"
    const anonymous = ctl(['status'], ctlEnv('', ''));
    expect(anonymous.stderr).toMatch(
      /^shardgate-ctl: status: etcd refused: authentication required \(etcd's auth is enabled and the call carried no user token\): set, or check, SHARDGATE_ETCD_USERNAME and SHARDGATE_ETCD_PASSWORD \(see shardgate-ctl status --help\)\n$/,
    );
    expect(anonymous.code).toBe(1);
    const wrong = ctl(['breakers', 'get'], ctlEnv(CTL, 'not-the-password'));
    expect(wrong.stderr).toMatch(/^shardgate-ctl: breakers get: etcd refused: authentication failed/);
    expect(wrong.stderr).not.toContain('not-the-password');
    expect(wrong.code).toBe(1);
    const half = ctl(['breakers', 'get'], ctlEnv(CTL, ''));
    expect(half.stderr).toMatch(
      /^shardgate-ctl: breakers get: missing environment variable SHARDGATE_ETCD_PASSWORD: SHARDGATE_ETCD_USERNAME is set/,
    );
    expect(half.code).toBe(1);
  });

  it('the API and the worker with their users load the config (the API registers); without them /health/config names the refusal', async () => {
    const [apiPort, workerPort, anonymousPort] = [await freePort(), await freePort(), await freePort()];
    const base = { SHARDGATE_ETCD_ENDPOINTS: url, SHARDGATE_ETCD_PREFIX: PREFIX };
    const as = (user: string) => ({ SHARDGATE_ETCD_USERNAME: user, SHARDGATE_ETCD_PASSWORD: PASSWORD });
    startEntry('src/entry/node.ts', {
      ...base,
      ...as(API),
      PORT: String(apiPort),
      SHARDGATE_INSTANCE_ID: 'auth-api',
    });
    startEntry('src/entry/email-worker.ts', {
      ...base,
      ...as(READER),
      SHARDGATE_WORKER_METRICS_PORT: String(workerPort),
    });
    startEntry('src/entry/node.ts', {
      ...base,
      PORT: String(anonymousPort),
      SHARDGATE_INSTANCE_ID: 'auth-none',
    });
    const health = async (port: number) =>
      (await fetch(`http://127.0.0.1:${port}/health/config`)).json() as Promise<Record<string, unknown>>;
    const when = (port: number, field: string) =>
      waitFor(async () => ((await health(port))[field] ? health(port) : undefined), {
        timeoutMs: 30_000,
        what: `${field} at :${port}/health/config`,
      });
    expect(await when(apiPort, 'loaded')).toMatchObject({ connected: true });
    expect(await when(workerPort, 'loaded')).toMatchObject({ connected: true });
    // the API's registration: a write under a lease, with its user's token
    await waitFor(() => etcdctl(url, ['get', `${PREFIX}instances/auth-api`]).includes('"url"'), {
      timeoutMs: 10_000,
      what: 'the registration',
    });
    const refused = await when(anonymousPort, 'lastError');
    expect(refused).toMatchObject({ loaded: false, connected: false });
    expect(refused.lastError).toMatch(/^etcd refused: authentication required .*SHARDGATE_ETCD_PASSWORD$/);
  });

  it('npm run migrate reads the shards with its user; without one it names the refusal (exit 1, not 2)', () => {
    const migrate = (user: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/db/migrate-cli.ts', '--shard', 'no-such-shard'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        timeout: 60_000,
        env: {
          ...process.env,
          SHARDGATE_ETCD_ENDPOINTS: url,
          SHARDGATE_ETCD_PREFIX: PREFIX,
          SHARDGATE_ETCD_USERNAME: user,
          SHARDGATE_ETCD_PASSWORD: user ? PASSWORD : '',
        },
      });
    const shard = { master: { host: '127.0.0.1', port: 3316 }, replicas: [], database: 'shardgate' };
    etcdctl(url, ['put', `${PREFIX}shards/auth-shard`, JSON.stringify(shard)]);
    // the shards were read: it stops at the shard named, before any database
    const read = migrate(READER);
    expect(read.stderr).toMatch(/unknown shard "no-such-shard" \(known: [^)]*\bauth-shard\b/);
    expect(read.status).toBe(1);
    const anonymous = migrate('');
    expect(anonymous.stderr).toMatch(
      /^migrate: etcd refused: authentication required .*SHARDGATE_ETCD_PASSWORD\n$/,
    );
    expect(anonymous.status).toBe(1);
  });

  it('an entry given only one of the two stops at start, naming the missing one', async () => {
    const entry = startEntry('src/entry/node.ts', { SHARDGATE_ETCD_PASSWORD: PASSWORD });
    expect(await entry.exited()).toBe(1);
    expect(entry.stderr()).toMatch(
      /missing environment variable SHARDGATE_ETCD_USERNAME: SHARDGATE_ETCD_PASSWORD is set/,
    );
    expect(entry.stderr()).not.toContain(PASSWORD);
  });
});

describe('etcd with JWT tokens, auth enabled while a client runs', () => {
  it('keeps working through `auth enable` and an auth change, its watch included', async () => {
    const keys = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      publicKeyEncoding: { type: 'spki', format: 'pem' },
      privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
    });
    writeFileSync(join(dir, 'jwt.pub'), keys.publicKey);
    writeFileSync(join(dir, 'jwt.key'), keys.privateKey, { mode: 0o600 });
    const url = await startEtcd('jwt', [
      `--auth-token=jwt,pub-key=${join(dir, 'jwt.pub')},priv-key=${join(dir, 'jwt.key')},sign-method=RS256,ttl=10m`,
    ]);
    createUsers(url);

    // auth still off: etcd answers the token request "authentication is not enabled"
    const etcd = client(url, creds(CTL));
    await etcd.put(`${PREFIX}x`).value('1');
    const seen: string[] = [];
    const watcher = await etcd.watch().prefix(PREFIX).create();
    watcher.on('data', (r: IWatchResponse) => seen.push(...r.events.map((e) => e.kv.key.toString())));

    etcdctl(url, ['auth', 'enable'], { root: false });
    await etcd.put(`${PREFIX}y`).value('2');
    expect(await etcd.get(`${PREFIX}y`).string()).toBe('2');
    await waitFor(() => seen.includes(`${PREFIX}y`), { what: 'the open watch after auth enable' });

    // any auth change makes a JWT token stale: "revision of auth store is old"
    etcdctl(url, ['role', 'grant-permission', READER, 'read', '/other/']);
    await etcd.put(`${PREFIX}z`).value('3');
    expect(await etcd.get(`${PREFIX}z`).string()).toBe('3');
    etcdctl(url, ['role', 'grant-permission', READER, 'read', '/another/']);
    // a new watch on the stream opened with the stale token: created on a reopened stream
    const second: string[] = [];
    const watcher2 = await etcd.watch().prefix(PREFIX).create();
    watcher2.on('data', (r: IWatchResponse) => second.push(...r.events.map((e) => e.kv.key.toString())));
    etcdctl(url, ['put', `${PREFIX}w`, '4']);
    await waitFor(() => second.includes(`${PREFIX}w`) && seen.includes(`${PREFIX}w`), {
      what: 'both watches after the auth change',
    });
    await watcher.cancel();
    await watcher2.cancel();
  });
});

describe('an instance without credentials when auth is enabled after it started', () => {
  it('keeps its watch (connected: true) and /health/config names the refused registration as `refused`', async () => {
    const url = await startEtcd('late');
    createUsers(url);
    const port = await freePort();
    startEntry('src/entry/node.ts', {
      SHARDGATE_ETCD_ENDPOINTS: url,
      SHARDGATE_ETCD_PREFIX: PREFIX,
      PORT: String(port),
      SHARDGATE_INSTANCE_ID: 'late-none',
    });
    const health = async () =>
      (await fetch(`http://127.0.0.1:${port}/health/config`)).json() as Promise<Record<string, unknown>>;
    await waitFor(async () => (await health()).loaded === true, {
      timeoutMs: 30_000,
      what: 'the first load',
    });
    await waitFor(
      () => etcdctl(url, ['get', `${PREFIX}instances/late-none`], { root: false }).includes('"url"'),
      {
        timeoutMs: 10_000,
        what: 'the registration while auth is off',
      },
    );
    expect((await health()).refused).toBeUndefined();

    etcdctl(url, ['auth', 'enable'], { root: false });
    // a change the open watch still delivers: the instance applies it and re-registers with the
    // new revision, a write etcd now refuses ("user name is empty")
    etcdctl(url, ['put', `${PREFIX}cache/ttl_seconds`, '42']);
    const status = await waitFor(async () => ((await health()).refused ? health() : undefined), {
      timeoutMs: 15_000,
      what: 'refused at /health/config',
    });
    expect(status).toMatchObject({ connected: true, loaded: true });
    expect(status.refused).toMatch(
      /^instance registration: etcd refused: authentication required .*SHARDGATE_ETCD_PASSWORD$/,
    );
    expect(typeof status.refusedSince).toBe('string');
    expect((status.applied as { cache: { ttlSeconds: number } }).cache.ttlSeconds).toBe(42);

    // auth off again: the registration's next retry (every second) succeeds and clears it
    etcdctl(url, ['auth', 'disable']);
    const cleared = await waitFor(
      async () => ((await health()).refused === undefined ? health() : undefined),
      {
        timeoutMs: 15_000,
        what: 'refused gone from /health/config',
      },
    );
    expect(cleared.refusedSince).toBeUndefined();
    expect(etcdctl(url, ['get', `${PREFIX}instances/late-none`], { root: false })).toContain('"url"');
  });
});
