/**
 * CORS headers on HAProxy's own answers (stack/haproxy-config.ts corsRules), filled from
 * `cors/allowed_origins` by `shardgate-ctl lb sync` (one-shot and --watch) into HAProxy's map:
 * a browser script on a listed site can read a 503's problem+json and `Retry-After` instead of
 * seeing a network error. Real HAProxy processes: two spare ones rendered with the map (one in
 * front of a closed port, so every /v1 answer is its own 503; one in front of the stack's API
 * instances), and the stack's own HAProxy with the stack's lb sync daemon for a 408.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../bench/ceiling.js';
import { corsMapId, mapKeys } from '../control-plane/lb/cors-sync.js';
import { haproxyCommand, showServers } from '../control-plane/lb/haproxy-runtime.js';
import {
  CORS_MAP_FILE,
  CORS_MAP_SEED,
  localServers,
  REQUEST_TIMEOUT_SECONDS,
  renderHaproxyConfig,
} from '../stack/haproxy-config.js';
import { HAPROXY_SOCKET } from '../stack/paths.js';
import { portOpen } from '../stack/probes.js';
import { topology } from '../stack/topology.js';
import { HAPROXY, registerAndLogin } from './helpers/api.js';
import { ctl, ctlAsync, ctlStart, type RunningCtl } from './helpers/ctl.js';
import { etcdDel, etcdGet, etcdPut } from './helpers/etcd.js';
import { configInForce } from './helpers/live-config.js';
import { createTenant, removeTenant, uniqueTenantId } from './helpers/tenants.js';
import { waitFor } from './helpers/wait-for.js';

const KEY = 'cors/allowed_origins';
const SITE = 'https://library.example.org';
const OTHER = 'https://other.example';
const tenant = uniqueTenantId('lbcors');
let before: string | undefined;

interface SpareHaproxy {
  url: string;
  socket: string;
  config: string;
  process: ChildProcess;
}

async function startHaproxy(name: string, servers: ReturnType<typeof localServers>): Promise<SpareHaproxy> {
  const dir = mkdtempSync(join(tmpdir(), `sg-lb-cors-${name}-`));
  const port = await freePort(topology.host);
  const socket = join(dir, 'haproxy.sock');
  const config = join(dir, 'haproxy.cfg');
  const mapFile = join(dir, CORS_MAP_FILE);
  writeFileSync(mapFile, CORS_MAP_SEED);
  writeFileSync(
    config,
    renderHaproxyConfig({
      bindHost: topology.host,
      servers,
      socketPath: socket,
      port,
      statsPort: await freePort(topology.host),
      corsMapFile: mapFile,
    }),
  );
  const spare = { url: `http://${topology.host}:${port}`, socket, config, process: spawnHaproxy(config) };
  await waitFor(() => portOpen(port), { timeoutMs: 5000, what: `${name} HAProxy` });
  expect(spare.process.exitCode, `the ${name} HAProxy exited (its bind failed?)`).toBeNull();
  return spare;
}

function spawnHaproxy(config: string): ChildProcess {
  return spawn('haproxy', ['-db', '-f', config], { stdio: 'ignore' });
}

/** HAProxy's answer to `GET path` with `origin` (none: no Origin header) */
async function get(base: string, path: string, origin?: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${base}${path}`, {
    headers: { ...headers, ...(origin ? { Origin: origin } : {}) },
  });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body };
}

/** what a server answers to `text` sent as is, until it closes the connection */
function rawRequest(url: URL, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(Number(url.port), url.hostname);
    let answer = '';
    sock.setEncoding('utf8');
    sock.on('data', (d) => {
      answer += d;
    });
    sock.on('error', reject);
    sock.on('close', () => resolve(answer));
    sock.write(text);
  });
}

/** `show map` of the stack HAProxy's CORS map */
async function stackMap(): Promise<string> {
  const id = corsMapId(await haproxyCommand(HAPROXY_SOCKET, 'show map'));
  if (id === undefined) throw new Error(`the stack's HAProxy has no ${CORS_MAP_FILE}`);
  return haproxyCommand(HAPROXY_SOCKET, `show map ${id}`);
}

const allowOf = (a: { headers: Headers }) => a.headers.get('Access-Control-Allow-Origin');

const origins = (list: string[]) =>
  configInForce(
    (a) => JSON.stringify((a.cors as { allowedOrigins: string[] }).allowedOrigins) === JSON.stringify(list),
    `${KEY} ${JSON.stringify(list)}`,
  );

let down: SpareHaproxy;
let up: SpareHaproxy;
let daemon: RunningCtl | undefined;

beforeAll(async () => {
  before = etcdGet(KEY);
  const closed = await freePort(topology.host);
  // a server nothing listens on: every request ends in HAProxy's own 503
  down = await startHaproxy('down', [
    { name: 'api-1', host: topology.host, port: closed, agentPort: closed, weight: 1 },
  ]);
  up = await startHaproxy('up', localServers());
  await waitFor(
    async () =>
      (await showServers(up.socket, topology.haproxy.backend)).filter((s) => s.running).length === 2,
    { timeoutMs: 10_000, intervalMs: 100, what: 'both instances UP on the spare HAProxy' },
  );
  await createTenant(tenant, 'shard-1');
});

afterAll(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGTERM');
    await daemon.exited;
  }
  down?.process.kill('SIGKILL');
  up?.process.kill('SIGKILL');
  if (before === undefined) etcdDel(KEY);
  else etcdPut(KEY, before);
  removeTenant(tenant);
});

describe('CORS headers on HAProxy’s own answers', () => {
  it('one-shot lb sync fills the map: a 503 of HAProxy carries the listed origin, others and /health get none', async () => {
    etcdPut(KEY, `${SITE}, http://localhost:5173`);
    await origins([SITE, 'http://localhost:5173']);
    // the map starts empty: no CORS header yet
    expect(allowOf(await get(down.url, '/v1/books', SITE))).toBeNull();

    const r = ctl(['lb', 'sync', '--socket', down.socket]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `applied: ${KEY} → haproxy map ${CORS_MAP_FILE}: ${SITE}, http://localhost:5173`,
    );

    const listed = await get(down.url, '/v1/books', SITE);
    expect(listed.status).toBe(503);
    expect(listed.headers.get('Content-Type')).toBe('application/problem+json');
    expect(JSON.parse(listed.body)).toMatchObject({ status: 503, code: 'service_unavailable' });
    expect(allowOf(listed)).toBe(SITE);
    const exposed = (listed.headers.get('Access-Control-Expose-Headers') ?? '').split(', ');
    for (const h of ['Retry-After', 'X-Request-Id']) expect(exposed).toContain(h);
    expect(listed.headers.get('Vary')).toBe('Origin');
    expect(listed.headers.get('Retry-After')).toBe('1');
    // the other listed origin; `/v1` itself
    expect(allowOf(await get(down.url, '/v1', 'http://localhost:5173'))).toBe('http://localhost:5173');

    for (const [path, origin] of [
      ['/v1/books', OTHER],
      ['/v1/books', undefined],
      ['/v1/books', `${SITE}.evil.example`],
      ['/health', SITE],
      ['/v1x', SITE],
      ['/metrics', SITE],
    ] as const) {
      const a = await get(down.url, path, origin);
      expect(a.status, `${path} ${origin}`).toBe(503);
      expect(allowOf(a), `${path} ${origin}`).toBeNull();
      expect(a.headers.get('Access-Control-Expose-Headers'), `${path} ${origin}`).toBeNull();
    }

    const again = ctl(['lb', 'sync', '--socket', down.socket]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(
      /^haproxy already matches etcd \(.*; cors\/allowed_origins: 2 origin\(s\)\)\n$/,
    );
  });

  it('lb sync --watch applies changes live, keeps the last good value when one is rejected, and refills a restarted HAProxy', async () => {
    daemon = ctlStart(['lb', 'sync', '--watch', '--interval-ms', '200', '--socket', down.socket]);
    const allowNow = async (origin?: string) => allowOf(await get(down.url, '/v1/books', origin));

    etcdPut(KEY, '*');
    await origins(['*']);
    await waitFor(async () => (await allowNow(OTHER)) === '*', {
      timeoutMs: 2000,
      what: 'HAProxy answering *',
    });
    const any = await get(down.url, '/v1/books');
    expect(allowOf(any)).toBe('*'); // without an Origin too, as the API
    expect(any.headers.get('Vary')).toBeNull();

    // a value the schema rejects: the instances keep `*`, and so does HAProxy
    etcdPut(KEY, 'https://Library.example.org/');
    await configInForce(
      (a) => JSON.stringify((a.cors as { allowedOrigins: string[] }).allowedOrigins) === '["*"]',
      `${KEY} still *`,
    );
    await new Promise((r) => setTimeout(r, 600)); // three of the daemon's polls
    expect(await allowNow(OTHER)).toBe('*');
    // logged as rejected by its config store (JSON), never applied
    expect(daemon.stdout()).not.toMatch(/applied: cors\S* → .*Library/);
    expect(daemon.stdout()).toContain('keeping last good value');

    etcdPut(KEY, SITE);
    await origins([SITE]);
    await waitFor(async () => (await allowNow(SITE)) === SITE && (await allowNow(OTHER)) === null, {
      timeoutMs: 2000,
      what: 'HAProxy answering the one listed site',
    });

    // a new HAProxy process starts from the empty map file; the daemon fills it again
    down.process.kill('SIGKILL');
    await new Promise((r) => down.process.once('exit', r));
    down.process = spawnHaproxy(down.config);
    await waitFor(async () => (await allowNow(SITE)) === SITE, {
      timeoutMs: 5000,
      intervalMs: 100,
      what: 'the restarted HAProxy answering with the listed site',
    });

    etcdDel(KEY);
    await origins([]);
    await waitFor(async () => (await allowNow(SITE)) === null, {
      timeoutMs: 2000,
      what: 'no CORS header after the delete',
    });
    expect(daemon.child.exitCode).toBeNull();
  });

  it('answers a listed preflight itself while no instance is usable, so the browser sends the request and reads the 503', async () => {
    etcdPut(KEY, SITE);
    await origins([SITE]);
    const r = ctl(['lb', 'sync', '--socket', down.socket]);
    expect(r.code, r.stderr).toBe(0);
    await waitFor(
      async () => (await showServers(down.socket, topology.haproxy.backend)).every((sv) => !sv.running),
      {
        timeoutMs: 10_000,
        intervalMs: 100,
        what: 'the closed-port server DOWN',
      },
    );
    const preflight = (origin: string, method: string) =>
      fetch(`${down.url}/v1/books`, {
        method: 'OPTIONS',
        headers: {
          Origin: origin,
          'Access-Control-Request-Method': method,
          'Access-Control-Request-Headers': 'authorization, x-tenant-id',
        },
      });
    const ok = await preflight(SITE, 'POST');
    expect(ok.status).toBe(204);
    expect(allowOf(ok)).toBe(SITE);
    expect(ok.headers.get('Access-Control-Allow-Methods')).toBe('POST');
    const allowHeaders = (ok.headers.get('Access-Control-Allow-Headers') ?? '').split(', ');
    for (const h of ['Authorization', 'X-Tenant-ID']) expect(allowHeaders).toContain(h);
    expect(ok.headers.get('Access-Control-Max-Age')).toBe('5');
    // the request the browser then sends: HAProxy's 503, readable
    const then = await get(down.url, '/v1/books', SITE, { 'X-Tenant-ID': tenant });
    expect(then.status).toBe(503);
    expect(allowOf(then)).toBe(SITE);
    // another origin, a method the API has not, a plain OPTIONS: HAProxy's 503, no CORS
    for (const res of [
      await preflight(OTHER, 'POST'),
      await preflight(SITE, 'TRACE'),
      await fetch(`${down.url}/v1/books`, { method: 'OPTIONS', headers: { Origin: OTHER } }),
    ]) {
      expect(res.status).toBe(503);
      expect(res.headers.get('Access-Control-Allow-Methods')).toBeNull();
    }
    expect(allowOf(await preflight(SITE, 'TRACE'))).toBe(SITE); // the 503 itself is readable
    // two Origin headers (no browser sends them): none, as from the instances
    const url = new URL(down.url);
    const twice = await rawRequest(
      url,
      `GET /v1/books HTTP/1.1\r\nHost: ${url.host}\r\nOrigin: ${OTHER}\r\nOrigin: ${SITE}\r\nConnection: close\r\n\r\n`,
    );
    expect(twice).toMatch(/^HTTP\/1\.1 503 /);
    // two Access-Control-Request-Method: the 503, never an unchecked copy in the 204
    const twoMethods = await rawRequest(
      url,
      `OPTIONS /v1/books HTTP/1.1\r\nHost: ${url.host}\r\nOrigin: ${SITE}\r\nAccess-Control-Request-Method: GET\r\nAccess-Control-Request-Method: x<y>\r\nConnection: close\r\n\r\n`,
    );
    expect(twoMethods).toMatch(/^HTTP\/1\.1 503 /);
    expect(twoMethods.toLowerCase()).not.toContain('access-control-allow-methods');
    expect(twice.toLowerCase()).not.toContain('access-control-allow-origin');
  });

  it('two lb sync runs at once both succeed and leave the list of etcd', async () => {
    for (let round = 0; round < 5; round++) {
      const list = [`https://r${round}.example`, `https://r${round}-b.example`, SITE];
      etcdPut(KEY, list.join(', '));
      await origins(list);
      const runs = await Promise.all([0, 1].map(() => ctlAsync(['lb', 'sync', '--socket', down.socket])));
      for (const run of runs) expect(run.code, `round ${round}: ${run.stderr}`).toBe(0);
      expect(
        mapKeys(
          await haproxyCommand(
            down.socket,
            `show map ${corsMapId(await haproxyCommand(down.socket, 'show map'))}`,
          ),
        ).sort(),
      ).toEqual([...list].sort());
    }
  });

  it('never adds CORS to an answer of an API instance, even from a map left stale', async () => {
    etcdPut(KEY, SITE);
    await origins([SITE]);
    // the map of the spare HAProxy in front of the instances, written by hand with an origin
    // etcd does not list (as an lb sync that died before a removal would leave it)
    const id = /^(\d+) \(/m.exec(await haproxyCommand(up.socket, 'show map'))?.[1];
    expect(id).toBeDefined();
    const version = /New version created: (\d+)/.exec(
      await haproxyCommand(up.socket, `prepare map #${id}`),
    )?.[1];
    for (const o of [OTHER, SITE]) await haproxyCommand(up.socket, `add map @${version} #${id} ${o} ${o}`);
    await haproxyCommand(up.socket, `commit map @${version} #${id}`);
    expect(await haproxyCommand(up.socket, `show map #${id}`)).toContain(OTHER);
    // `status` on that HAProxy names the difference (the sign of an lb sync that is not running)
    const status = ctl(['status', '--json'], { SHARDGATE_HAPROXY_SOCKET: up.socket });
    expect(status.code, status.stderr).toBe(0);
    expect(
      (JSON.parse(status.stdout) as { haproxy: { differences: string[] } }).haproxy.differences,
    ).toContain(
      `HAProxy's ${CORS_MAP_FILE} lists ${OTHER}, ${SITE}, etcd ${SITE}: its own answers follow the map until lb sync runs`,
    );

    const { token } = await registerAndLogin(tenant, 'reader@lb-cors.example', { base: up.url });
    const headers = { 'X-Tenant-ID': tenant, Authorization: `Bearer ${token}` };
    const stale = await get(up.url, '/v1/books', OTHER, headers);
    expect(stale.status).toBe(200);
    expect(stale.headers.get('X-Served-By')).toMatch(/^api-/);
    expect(allowOf(stale)).toBeNull();
    // a listed origin: the instance's own header, once
    const listed = await get(up.url, '/v1/books', SITE, headers);
    expect(listed.status).toBe(200);
    expect(allowOf(listed)).toBe(SITE);
    expect(listed.headers.get('Vary')).toBe('Origin');
  });

  it(
    'through the stack: a body that never arrives gets HAProxy’s 408 with the listed origin',
    async () => {
      etcdPut(KEY, SITE);
      await origins([SITE]);
      const haproxy = new URL(HAPROXY);
      // HAProxy looks the origin up when the headers arrive: wait for the stack's lb sync daemon
      // to have written it into the stack HAProxy's map
      await waitFor(async () => mapKeys(await stackMap()).includes(SITE), {
        timeoutMs: 2000,
        intervalMs: 50,
        what: `${SITE} in the stack HAProxy's ${CORS_MAP_FILE}`,
      });
      const answer = await rawRequest(
        haproxy,
        `POST /v1/books HTTP/1.1\r\nHost: ${haproxy.host}\r\nOrigin: ${SITE}\r\nX-Tenant-ID: ${tenant}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"title":`,
      );
      const [head = '', body = ''] = answer.split('\r\n\r\n');
      expect(head).toMatch(/^HTTP\/1\.1 408 /);
      expect(head).toMatch(
        new RegExp(`\r\naccess-control-allow-origin: ${SITE.replace(/\./g, '\\.')}\r\n`, 'i'),
      );
      expect(head).toMatch(/\r\naccess-control-expose-headers: [^\r]*X-Request-Id/i);
      expect(JSON.parse(body)).toMatchObject({ status: 408, code: 'request_timeout' });
    },
    (REQUEST_TIMEOUT_SECONDS + 10) * 1000,
  );
});
