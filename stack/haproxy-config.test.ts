import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CORS_ALLOW_HEADERS, CORS_EXPOSE_HEADERS } from '../src/http/cors.js';
import { credentialRateOf } from './haproxy.js';
import {
  CORS_MAP_FILE,
  CORS_MAP_SEED,
  DOCKER_CREDENTIAL_RATE_PER_MINUTE,
  DOCKER_DNS,
  HAPROXY_PROBLEMS,
  localServers,
  problemReply,
  renderDockerHaproxyConfig,
  renderHaproxyConfig,
} from './haproxy-config.js';
import { binary } from './preflight.js';
import { topology } from './topology.js';

const local = renderHaproxyConfig({
  bindHost: '127.0.0.1',
  servers: localServers(),
  socketPath: '/tmp/x.sock',
  corsMapFile: `/tmp/x/${CORS_MAP_FILE}`,
});

/** with tenant affinity and the credential limit too */
const affinityLimited = renderHaproxyConfig({
  bindHost: '127.0.0.1',
  servers: localServers(),
  socketPath: '/tmp/x.sock',
  tenantAffinity: true,
  credentialRatePerMinute: 5,
  corsMapFile: `/tmp/x/${CORS_MAP_FILE}`,
});

/** `text` with its CORS map file moved into `dir`, where an empty one is written (for haproxy -c) */
function withMapIn(dir: string, text: string): string {
  const file = join(dir, CORS_MAP_FILE);
  writeFileSync(file, CORS_MAP_SEED);
  return text.replace(/[^\s(]+\/cors-origins\.map/g, file);
}

describe('HAProxy config template', () => {
  it('balances weighted round-robin over every API instance, named by instance id', () => {
    expect(local).toMatch(/^\s+balance roundrobin$/m);
    for (const a of topology.apis) {
      expect(local).toMatch(
        new RegExp(`^\\s+server ${a.id} 127\\.0\\.0\\.1:${a.port} weight ${a.weight}\\b`, 'm'),
      );
    }
  });

  it('with tenant affinity, refuses a /v1 request without X-Tenant-ID unless it is an OPTIONS (a CORS preflight has none)', () => {
    const affinity = renderHaproxyConfig({
      bindHost: '127.0.0.1',
      servers: localServers(),
      socketPath: '/tmp/x.sock',
      tenantAffinity: true,
    });
    const guard = affinity.split('\n').filter((line) => line.includes('missing_tenant'));
    expect(guard).toHaveLength(1);
    expect(guard[0]).toMatch(
      / if \{ path_beg \/v1 \} !\{ req\.hdr\(X-Tenant-ID\) -m found \} !\{ method OPTIONS \}$/,
    );
    expect(local).not.toContain('missing_tenant');
  });

  it('has the health checks, retries, timeouts and reuse of the contract', () => {
    for (const line of [
      'option httpchk GET /health/ready',
      'http-check expect status 200',
      'check inter 1s fall 2 rise 2',
      'option redispatch',
      'retries 2',
      'retry-on conn-failure empty-response response-timeout',
      'timeout connect 2s',
      'timeout client 30s',
      'timeout server 30s',
      'timeout http-keep-alive 10s',
      'http-reuse safe',
      'option forwardfor',
      // clients are told the idle timeout HAProxy applies to them, not the API's 65 s
      'http-response set-header Keep-Alive timeout=10',
    ]) {
      expect(local, line).toContain(line);
    }
    // a write without an Idempotency-Key is never sent again after it may have run
    expect(local).toContain('acl resendable method GET HEAD OPTIONS\n');
    expect(local).toContain('acl resendable req.hdr(Idempotency-Key) -m found\n');
    expect(local).toContain('http-request disable-l7-retry unless resendable\n');
    // two lines in each backend: the main one and its fallback
    expect(local.match(/acl resendable /g)).toHaveLength(4);
    // one unanswered for 10 s is tried again (elsewhere once the silent instance is down);
    // three tries fit in the others' 30 s
    expect(local).toContain('http-request set-timeout server 10s if resendable\n');
  });

  it('fails open to a fallback backend of the same servers with lenient checks when the main one has none usable', () => {
    // an outside check: the busy survivor's check took over 1 s with its peer gone, and every
    // request was answered 503 for seconds
    const frontend = local.slice(local.indexOf('\nfrontend shardgate'), local.indexOf('\nfrontend stats'));
    expect(frontend).toContain('  use_backend api_fallback if { nbsrv(api) lt 1 }\n  default_backend api\n');
    const main = local.slice(local.indexOf('\nbackend api\n'), local.indexOf('\nbackend api_fallback\n'));
    const fallback = local.slice(local.indexOf('\nbackend api_fallback\n'));
    const servers = (text: string) => text.split('\n').filter((l) => l.startsWith('  server '));
    // the same servers, agent included (a weight of 0 and a shutdown's drain hold there too)
    expect(servers(fallback)).toEqual(servers(main));
    expect(servers(fallback)).toEqual(
      topology.apis.map(
        (a) => `  server ${a.id} 127.0.0.1:${a.port} weight ${a.weight} agent-port ${a.agentPort}`,
      ),
    );
    // twice the main one's patience, one failure out: with every instance hung it empties first
    expect(fallback).toContain(
      '  timeout check 2s\n  default-server check inter 1s fall 1 rise 1 agent-check agent-inter 1s\n',
    );
    for (const line of [
      'option httpchk GET /health/ready',
      'http-request disable-l7-retry unless resendable',
    ])
      expect(fallback, line).toContain(line);
    // with tenant affinity, the fallback hashes tenants as the main backend does
    const affinityMain = affinityLimited.slice(
      affinityLimited.indexOf('\nbackend api\n'),
      affinityLimited.indexOf('\nbackend api_fallback\n'),
    );
    const affinityFallback = affinityLimited.slice(affinityLimited.indexOf('\nbackend api_fallback\n'));
    const balanceOf = (text: string) => text.split('\n').filter((l) => /^ {2}(balance|hash-type) /.test(l));
    expect(balanceOf(affinityFallback)).toEqual(balanceOf(affinityMain));
    expect(balanceOf(affinityFallback).join('\n')).toContain('balance hdr(X-Tenant-ID)');
  });

  it('serves stats, the Prometheus exporter and an admin runtime socket', () => {
    expect(local).toContain(`bind 127.0.0.1:${topology.haproxy.statsPort}`);
    expect(local).toContain('stats uri /stats');
    expect(local).toContain('http-request use-service prometheus-exporter if { path /metrics }');
    expect(local).toContain('stats socket /tmp/x.sock mode 600 level admin expose-fd listeners');
  });

  it("answers HAProxy's own errors as problem+json, in defaults so every proxy has them", () => {
    const defaults = local.slice(local.indexOf('\ndefaults\n'), local.indexOf('\nfrontend '));
    const lines = defaults.split('\n').filter((l) => l.trimStart().startsWith('http-error '));
    const statuses = lines.map((l) => Number(/http-error status (\d+) /.exec(l)?.[1]));
    for (const status of [400, 403, 408, 429, 500, 502, 503, 504])
      expect(statuses, String(status)).toContain(status);
    expect(statuses).toHaveLength(new Set(statuses).size);
    for (const line of lines) {
      const m =
        /^\s+http-error status (\d+) content-type application\/problem\+json lf-string '([^']+)'(.*)$/.exec(
          line,
        );
      expect(m, line).not.toBeNull();
      const [, status = '', body = '', rest = ''] = m!;
      // requestId is the one log-format expression; everything else is literal JSON
      expect(body.match(/%/g), line).toHaveLength(1);
      const problem = JSON.parse(body.replace('%[var(txn.request_id)]', 'rid-1'));
      expect(Object.keys(problem)).toEqual(['type', 'title', 'status', 'detail', 'code', 'requestId']);
      expect(problem.status).toBe(Number(status));
      expect(problem.code).toMatch(/^[a-z]+(_[a-z]+)*$/);
      expect(problem.type).toBe(`https://shardgate.dev/problems/${problem.code}`);
      expect(problem.requestId).toBe('rid-1');
      const retryAfter = status === '503' || status === '429' ? ' hdr Retry-After 1' : '';
      expect(rest, line).toBe(
        `${retryAfter} hdr X-Request-Id %[var(txn.request_id)] hdr X-Content-Type-Options nosniff hdr Cache-Control no-store`,
      );
    }
  });

  it('gives every request an id the API keeps and problem bodies quote, and waits for bodies', () => {
    for (const line of [
      'unique-id-format %[uuid()]',
      // only a value matching the API's own pattern is taken from the caller (it goes into JSON)
      'http-request set-var(txn.request_id) req.fhdr(X-Request-Id) if { req.fhdr(X-Request-Id) -m reg ^[A-Za-z0-9._:-]{1,128}$ }',
      'http-request set-var(txn.request_id) unique-id unless { var(txn.request_id) -m found }',
      'http-request set-header X-Request-Id %[var(txn.request_id)]',
      // a declared length above the body limit is not waited for: the instance answers it at once;
      // as a number (16385…2^31-1) and as text (6+ digits, which also catches what the number wraps)
      'http-request wait-for-body time 10s at-least 16385 unless { req.hdr_val(content-length) gt 16384 } || { req.hdr(content-length) -m reg ^0*[1-9][0-9]{5,}$ }',
      'tune.bufsize 32768',
    ]) {
      expect(local, line).toContain(line);
    }
    // the id rules run before anything that can answer from the frontend
    expect(local.indexOf('set-header X-Request-Id')).toBeLessThan(local.indexOf('wait-for-body'));
  });

  it('refuses problem text that would break out of the quoted log-format string', () => {
    const base = HAPROXY_PROBLEMS[0]!;
    for (const detail of ["it's", '100%', 'a\\b']) {
      expect(() => problemReply({ ...base, detail }), detail).toThrow(/allowed/);
    }
  });

  it('renders for docker with container hostnames from the same template', () => {
    const docker = renderDockerHaproxyConfig();
    for (const a of topology.apis) expect(docker).toContain(`server ${a.id} ${a.id}:${a.port}`);
    // the same but for the addresses, and the credential limit and run-time resolution compose turns on
    const limited = renderHaproxyConfig({
      bindHost: '127.0.0.1',
      servers: localServers(),
      socketPath: '/tmp/x.sock',
      credentialRatePerMinute: DOCKER_CREDENTIAL_RATE_PER_MINUTE,
      resolver: { name: 'docker', nameserver: DOCKER_DNS },
      corsMapFile: `/usr/local/etc/haproxy/${CORS_MAP_FILE}`,
    });
    expect(docker.replace(/\S+:\d+|\/\S+\.sock/g, '')).toBe(limited.replace(/\S+:\d+|\/\S+\.sock/g, ''));
  });

  it("gives HAProxy's own /v1 answers the CORS headers of the map lb sync fills, never an instance's", () => {
    const frontend = local.split('\nfrontend shardgate\n')[1]!.split('\nfrontend stats')[0]!;
    const map = `/tmp/x/${CORS_MAP_FILE}`;
    // the listed value from the map, never the request's own text; `*` alone for every origin
    expect(frontend).toContain(
      `http-request set-var(txn.cors_origin) req.fhdr(Origin),map(${map}) if cors_path { req.fhdr_cnt(Origin) eq 1 }\n`,
    );
    expect(frontend).toContain(
      `http-request set-var(txn.cors_origin) str(*),map(${map}) if cors_path !{ var(txn.cors_origin) -m found }\n`,
    );
    expect(frontend).toMatch(/^ {2}acl cors_path path \/v1\n {2}acl cors_path path_beg \/v1\/\n/m);
    // a listed origin's preflight while no server is usable: 204 for the method asked (one of the
    // API's, checked: it goes into the header), so the browser sends the request and reads the 503
    expect(frontend).toContain(
      `http-request return status 204 hdr Access-Control-Allow-Methods %[req.fhdr(Access-Control-Request-Method)] hdr Access-Control-Allow-Headers "${CORS_ALLOW_HEADERS}" hdr Access-Control-Max-Age 5 hdr Cache-Control no-store hdr X-Request-Id %[var(txn.request_id)] if METH_OPTIONS { var(txn.cors_origin) -m found } { req.fhdr_cnt(Access-Control-Request-Method) eq 1 } { req.fhdr(Access-Control-Request-Method) -m reg ^(GET|HEAD|POST|PUT|PATCH|DELETE)$ } { nbsrv(api) lt 1 }\n`,
    );
    // decided before any rule that answers (affinity, the credential limit, the body wait)
    const at = (text: string) => affinityLimited.indexOf(text);
    expect(at('set-var(txn.cors_origin) str(*)')).toBeGreaterThan(0);
    for (const later of ['return status 400', 'return status 429', 'wait-for-body'])
      expect(at('set-var(txn.cors_origin) str(*)'), later).toBeLessThan(at(later));
    // only on answers without X-Served-By (HAProxy's own): an instance's answer is the instance's
    const own = 'if { var(txn.cors_origin) -m found } !{ res.hdr(X-Served-By) -m found }';
    expect(frontend).toContain(
      `http-after-response set-header Access-Control-Allow-Origin %[var(txn.cors_origin)] ${own}\n`,
    );
    expect(frontend).toContain(
      `http-after-response set-header Access-Control-Expose-Headers "${CORS_EXPOSE_HEADERS}" ${own}\n`,
    );
    expect(frontend).toContain(
      `http-after-response set-header Vary Origin ${own} !{ var(txn.cors_origin) -m str * }\n`,
    );
    expect(renderDockerHaproxyConfig()).toContain(`map(/usr/local/etc/haproxy/${CORS_MAP_FILE})`);
    // without a map file, no CORS rule at all; a map of another name would never be found
    const bare = renderHaproxyConfig({
      bindHost: '127.0.0.1',
      servers: localServers(),
      socketPath: '/tmp/x.sock',
    });
    expect(bare).not.toMatch(/cors|Access-Control/i);
    expect(() =>
      renderHaproxyConfig({ bindHost: 'h', servers: [], socketPath: 's', corsMapFile: '/tmp/origins.map' }),
    ).toThrow(/corsMapFile must be named cors-origins\.map/);
    expect(() =>
      renderHaproxyConfig({
        bindHost: 'h',
        servers: [],
        socketPath: 's',
        corsMapFile: '/tmp/my-cors-origins.map',
      }),
    ).toThrow(/corsMapFile must be named cors-origins\.map/);
  });

  it('limits credential POSTs per source address only when asked, with a problem+json 429 after the request id', () => {
    expect(local).not.toContain('credential_rate');
    const limited = renderHaproxyConfig({
      bindHost: '127.0.0.1',
      servers: localServers(),
      socketPath: '/tmp/x.sock',
      credentialRatePerMinute: 30,
    });
    const frontend = limited.split('\nfrontend shardgate\n')[1]!.split('\nfrontend stats')[0]!;
    expect(frontend).toContain(
      'acl credential_route_path path /v1/auth/login /v1/auth/change-password /v1/members',
    );
    expect(frontend).toContain(
      'http-request track-sc1 src,ipmask(32,64) table credential_rate if credential_route',
    );
    expect(frontend).toMatch(
      /http-request return status 429 content-type application\/problem\+json .*too_many_credential_requests.* hdr Retry-After 60 .*\{ sc1_http_req_rate\(credential_rate\) gt 30 \}/,
    );
    // after the request id is set, so the 429 body carries it
    expect(frontend.indexOf('track-sc1')).toBeGreaterThan(frontend.indexOf('set-header X-Request-Id'));
    expect(limited).toContain(
      'backend credential_rate\n  stick-table type ipv6 size 100k expire 60s store http_req_rate(60s)',
    );
    expect(() =>
      renderHaproxyConfig({ bindHost: 'h', servers: [], socketPath: 's', credentialRatePerMinute: 1.5 }),
    ).toThrow(/whole number/);
  });

  it('takes the local limit from SHARDGATE_LB_CREDENTIAL_RATE: unset or 0 is none, anything but a whole number stops', () => {
    expect(credentialRateOf({})).toBe(0);
    expect(credentialRateOf({ SHARDGATE_LB_CREDENTIAL_RATE: ' 120 ' })).toBe(120);
    for (const bad of ['-1', '1.5', 'ten', '2000000'])
      expect(() => credentialRateOf({ SHARDGATE_LB_CREDENTIAL_RATE: bad }), bad).toThrow(
        /^invalid SHARDGATE_LB_CREDENTIAL_RATE ".*": a whole number 0-1000000/,
      );
  });

  it("re-resolves the docker servers by Docker's DNS; the local render names addresses and has no resolvers", () => {
    const docker = renderDockerHaproxyConfig();
    expect(docker).toMatch(/^resolvers docker\n {2}nameserver dns 127\.0\.0\.11:53\n/m);
    for (const a of topology.apis)
      expect(docker).toMatch(
        new RegExp(
          `^\\s+server ${a.id} ${a.id}:${a.port} .* resolvers docker init-addr last,libc,none$`,
          'm',
        ),
      );
    expect(local).not.toMatch(/resolvers|init-addr/);
  });

  it('lets HAProxy start in compose before the API containers resolve (init-addr none)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardgate-haproxy-'));
    try {
      // as written: api-1/api-2 do not resolve here, as in a container started before them
      const file = join(dir, 'docker.cfg');
      writeFileSync(file, withMapIn(dir, renderDockerHaproxyConfig()));
      execFileSync(binary('haproxy'), ['-c', '-q', '-f', file], { stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is accepted by haproxy -c (local and docker renders, with and without tenant affinity)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardgate-haproxy-'));
    try {
      const renders = { local, docker: renderDockerHaproxyConfig(), affinity: affinityLimited };
      for (const [name, text] of Object.entries(renders)) {
        const file = join(dir, `${name}.cfg`);
        // container hostnames do not resolve here: check the docker render with loopback servers
        writeFileSync(file, withMapIn(dir, text).replace(/server (\S+) \1:/g, 'server $1 127.0.0.1:'));
        execFileSync(binary('haproxy'), ['-c', '-q', '-f', file], { stdio: 'pipe' });
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
