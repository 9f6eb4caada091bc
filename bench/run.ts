/**
 * `npm run bench` — shardgate against the physical ceiling of this box, side by side in one run
 * (issue "benchmarks"). Needs the local stack up (`npm run stack -- up`).
 *
 * Each scenario runs through HAProxy (:8080) and directly against api-1 (:8101), closed-loop
 * with autocannon for a few seconds; the headline cached read is then re-run at a constant
 * 70 % of its measured maximum (autocannon `overallRate`, latencies corrected for coordinated
 * omission). The ceiling is a bare `node:http` server answering a fixed JSON body, alone and
 * behind a second HAProxy with the same defaults as the stack's. Latency percentiles are
 * computed from every response time (autocannon reports no p95). Results: a table on stdout and
 * JSON in bench/results/.
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, release, totalmem } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { REPO_ROOT, STATE_DIR } from '../stack/paths.js';
import { portOpen, sleep } from '../stack/process-manager.js';
import { topology } from '../stack/topology.js';

const H = topology.host;
const HAPROXY = `http://${H}:${topology.haproxy.port}`;
const DIRECT = `http://${H}:${topology.apis[0]!.port}`;
const CEILING_PORT = 8095;
const CEILING_LB_PORT = 8096;
const DURATION = Number(process.env.BENCH_SECONDS ?? 5);
const tag = `b${Date.now().toString(36)}`;

interface Row {
  scenario: string;
  via: 'haproxy' | 'direct';
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  errors: number;
  requests: number;
  ratio?: number;
  note?: string;
}

type Req = { method?: string; path: string; body?: string; headers?: Record<string, string> };

function etcdPut(key: string, value: string): void {
  execFileSync(
    'etcdctl',
    [`--endpoints=http://${H}:${topology.etcd.port}`, 'put', `${topology.etcd.prefix}${key}`, value],
    {
      env: { ...process.env, ETCDCTL_API: '3' },
      stdio: 'ignore',
    },
  );
}

async function call(method: string, url: string, tenant: string, body?: unknown, token?: string) {
  const res = await fetch(url, {
    method,
    headers: {
      'X-Tenant-ID': tenant,
      ...(body ? { 'Content-Type': 'application/json' } : {}),
      ...(token ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : undefined;
}

async function tenantWithBook(
  id: string,
  shard: string,
  copies: number,
  extraBooks = 0,
): Promise<{ id: string; token: string; bookId: string; books: string[] }> {
  etcdPut(`tenants/${id}`, JSON.stringify({ shard, status: 'active' }));
  await sleep(50);
  for (let i = 0; i < 50; i++) {
    const r = await fetch(`${DIRECT}/v1/books?limit=1`, { headers: { 'X-Tenant-ID': id } });
    if (r.status === 200) break;
    await sleep(100);
  }
  const email = `lib@${id}.example`;
  await call('POST', `${HAPROXY}/v1/members`, id, {
    email,
    name: 'Librarian',
    password: 'bench password 123',
  });
  const { token } = await call('POST', `${HAPROXY}/v1/auth/login`, id, {
    email,
    password: 'bench password 123',
  });
  const books: string[] = [];
  for (let i = 0; i <= extraBooks; i++) {
    const book = await call(
      'POST',
      `${HAPROXY}/v1/books`,
      id,
      { isbn: '9780131103627', title: `Bench ${i}`, author: 'A', copies },
      token,
    );
    books.push(book.id);
  }
  return { id, token, bookId: books[0]!, books };
}

function percentile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))]! : 0;
}

async function load(
  url: string,
  requests: (ctx: Record<string, unknown>) => Req[],
  { connections = 16, overallRate }: { connections?: number; overallRate?: number } = {},
) {
  const latencies: number[] = [];
  const seq = requests({});
  const inst = autocannon({
    url,
    connections,
    duration: DURATION,
    overallRate,
    requests: seq.map((_, i) => ({
      setupRequest: (req: Record<string, unknown>, ctx: Record<string, unknown>) => {
        const r = requests(ctx)[i]!;
        return { ...req, method: r.method ?? 'GET', path: r.path, body: r.body, headers: { ...r.headers } };
      },
      onResponse: (status: number, body: string, ctx: Record<string, unknown>) => {
        if (status < 300 && body.startsWith('{')) ctx.last = JSON.parse(body);
      },
    })),
  } as unknown as autocannon.Options);
  const emitter = inst as unknown as NodeJS.EventEmitter;
  emitter.on('response', (_c: unknown, _s: number, _b: number, ms: number) => latencies.push(ms));
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    emitter.on('done', resolve);
    emitter.on('error', reject);
  });
  latencies.sort((a, b) => a - b);
  return {
    rps: result.requests.average,
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    errors: result.errors + result.non2xx + result.timeouts,
    requests: result.requests.total,
  };
}

function rss(name: string): number {
  const pid = readFileSync(join(STATE_DIR, 'pids', `${name}.pid`), 'utf8').trim();
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : 0;
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

async function startCeiling() {
  const server = spawn(
    process.execPath,
    [
      '-e',
      `require('node:http').createServer((q,s)=>{s.writeHead(200,{'content-type':'application/json'});s.end('{"status":"ok"}')}).listen(${CEILING_PORT},'${H}')`,
    ],
    { stdio: 'ignore' },
  );
  const dir = join(REPO_ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, '.ceiling-haproxy.cfg.tmp');
  writeFileSync(
    cfg,
    `global\n  maxconn 4096\ndefaults\n  mode http\n  timeout connect 2s\n  timeout client 30s\n  timeout server 30s\n  timeout http-keep-alive 10s\n  http-reuse safe\nfrontend f\n  bind ${H}:${CEILING_LB_PORT}\n  default_backend b\nbackend b\n  server s1 ${H}:${CEILING_PORT}\n`,
  );
  const lb = spawn('haproxy', ['-db', '-f', cfg], { stdio: 'ignore' });
  for (let i = 0; i < 50 && !((await portOpen(CEILING_PORT)) && (await portOpen(CEILING_LB_PORT))); i++)
    await sleep(100);
  return () => {
    server.kill('SIGKILL');
    lb.kill('SIGKILL');
  };
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const rssIdle = rss(topology.apis[0]!.id);
  const stopCeiling = await startCeiling();
  const restore: [string, string][] = [['cache/enabled', 'true']];
  try {
    console.log('setting up tenants (argon2 registrations are slow on purpose)…');
    const hot = await tenantWithBook(`${tag}-hot`, 'shard-1', 1);
    const writers = await Promise.all([
      tenantWithBook(`${tag}-w1`, 'shard-1', 100_000, 15),
      tenantWithBook(`${tag}-w2`, 'shard-2', 100_000, 15),
      tenantWithBook(`${tag}-w3`, 'shard-1', 100_000, 15),
      tenantWithBook(`${tag}-w4`, 'shard-2', 100_000, 15),
    ]);
    const mixed: { id: string; token: string; bookId: string }[] = [];
    for (let i = 0; i < 100; i += 10) {
      mixed.push(
        ...(await Promise.all(
          Array.from({ length: 10 }, (_, k) =>
            tenantWithBook(`${tag}-m${i + k}`, (i + k) % 2 ? 'shard-2' : 'shard-1', 1000),
          ),
        )),
      );
    }
    let seq = 0;
    const scenarios: {
      name: string;
      requests: (ctx: Record<string, unknown>) => Req[];
      connections?: number;
      before?: () => void;
      note?: string;
    }[] = [
      { name: 'ceiling (node:http)', requests: () => [{ path: '/' }] },
      { name: 'GET /health', requests: () => [{ path: '/health' }] },
      {
        name: 'GET /v1/books/{id} cached (HIT)',
        requests: () => [{ path: `/v1/books/${hot.bookId}`, headers: { 'X-Tenant-ID': hot.id } }],
        before: () => etcdPut('cache/enabled', 'true'),
      },
      {
        name: 'GET /v1/books/{id} uncached',
        requests: () => [{ path: `/v1/books/${hot.bookId}`, headers: { 'X-Tenant-ID': hot.id } }],
        before: () => etcdPut('cache/enabled', 'false'),
      },
      {
        name: 'GET /v1/books?limit=20 (replica)',
        requests: () => [{ path: '/v1/books?limit=20', headers: { 'X-Tenant-ID': hot.id } }],
        before: () => etcdPut('cache/enabled', 'false'),
      },
      {
        name: 'POST /v1/members (argon2id, CPU-bound)',
        requests: () => [
          {
            method: 'POST',
            path: '/v1/members',
            headers: { 'X-Tenant-ID': hot.id, 'Content-Type': 'application/json' },
            body: JSON.stringify({
              email: `m${seq++}-${tag}@bench.example`,
              name: 'M',
              password: 'bench password 123',
            }),
          },
        ],
        before: () => etcdPut('cache/enabled', 'true'),
        note: 'CPU-bound by design (OWASP argon2id)',
      },
      {
        name: 'POST /v1/loans + return (2 shards)',
        connections: 32,
        requests: (ctx) => {
          // each connection works on its own book: 64 books over 4 tenants and 2 shards, so the
          // row lock serialises a book's own borrow/return pairs, not the whole library
          ctx.w ??= writers[Math.floor(Math.random() * writers.length)];
          const w = ctx.w as (typeof writers)[number];
          ctx.book ??= w.books[Math.floor(Math.random() * w.books.length)];
          const h = {
            'X-Tenant-ID': w.id,
            Authorization: `Bearer ${w.token}`,
            'Content-Type': 'application/json',
          };
          const loanId = (ctx.last as { id?: string } | undefined)?.id ?? 'none';
          return [
            { method: 'POST', path: '/v1/loans', headers: h, body: JSON.stringify({ bookId: ctx.book }) },
            { method: 'POST', path: `/v1/loans/${loanId}/return`, headers: h },
          ];
        },
        note: 'each borrow and each return is one durable transaction',
      },
      {
        name: 'mixed 90/10, 100 tenants, 2 shards',
        connections: 32,
        requests: () => {
          const t = mixed[Math.floor(Math.random() * mixed.length)]!;
          if (Math.random() < 0.9)
            return [{ path: `/v1/books/${t.bookId}`, headers: { 'X-Tenant-ID': t.id } }];
          return [
            {
              method: 'PATCH',
              path: `/v1/books/${t.bookId}`,
              headers: {
                'X-Tenant-ID': t.id,
                Authorization: `Bearer ${t.token}`,
                'Content-Type': 'application/json',
              },
              body: JSON.stringify({ title: `T${seq++}` }),
            },
          ];
        },
      },
    ];
    for (const s of scenarios) {
      s.before?.();
      await sleep(s.before ? 600 : 0);
      for (const via of ['haproxy', 'direct'] as const) {
        const base = s.name.startsWith('ceiling')
          ? `http://${H}:${via === 'haproxy' ? CEILING_LB_PORT : CEILING_PORT}`
          : via === 'haproxy'
            ? HAPROXY
            : DIRECT;
        const r = await load(base, s.requests, { connections: s.connections });
        rows.push({ scenario: s.name, via, ...r, note: s.note });
        console.log(
          `${s.name} via ${via}: ${r.rps.toFixed(0)} req/s p99 ${r.p99.toFixed(1)} ms errors ${r.errors}`,
        );
      }
    }
    etcdPut('cache/enabled', 'true');
    await sleep(600);
    // the headline read again, at a constant 70 % of its maximum, through HAProxy
    const hit = rows.find((r) => r.scenario.includes('cached (HIT)') && r.via === 'haproxy')!;
    const rate = Math.round(hit.rps * 0.7);
    const constant = await load(
      HAPROXY,
      () => [{ path: `/v1/books/${hot.bookId}`, headers: { 'X-Tenant-ID': hot.id } }],
      { connections: 16, overallRate: rate },
    );
    rows.push({ scenario: `GET /v1/books/{id} HIT at ${rate} req/s (70 %)`, via: 'haproxy', ...constant });

    for (const r of rows) {
      const ceiling = rows.find((c) => c.scenario.startsWith('ceiling') && c.via === r.via)!;
      r.ratio = r.rps / ceiling.rps;
    }
    const rssAfter = rss(topology.apis[0]!.id);
    const sha = version('git', ['rev-parse', '--short', 'HEAD']);
    const report = {
      date: new Date().toISOString(),
      git: sha,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
        kernel: release(),
      },
      versions: {
        node: process.version,
        mariadb: version('mariadbd', ['--version']),
        haproxy: version('haproxy', ['-v']),
        redis: version('redis-server', ['--version']),
      },
      durationSeconds: DURATION,
      apiRssMiB: { idle: +rssIdle.toFixed(1), afterRun: +rssAfter.toFixed(1) },
      rows,
    };
    const dir = join(REPO_ROOT, 'bench', 'results');
    const file = join(dir, `${report.date.slice(0, 10)}-${sha}.json`);
    writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);

    const line = (r: Row) =>
      `| ${r.scenario} | ${r.via} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.errors} | ${((r.ratio ?? 0) * 100).toFixed(0)} % |`;
    console.log(
      `\n${report.machine.cpus} cores ${report.machine.cpuModel}, ${report.versions.node}, git ${sha}, ${DURATION} s per run`,
    );
    console.log('| scenario | via | req/s | p50 ms | p95 ms | p99 ms | errors | of ceiling |');
    console.log('|---|---|---|---|---|---|---|---|');
    for (const r of rows) console.log(line(r));
    console.log(
      `\napi-1 RSS: ${report.apiRssMiB.idle} MiB idle, ${report.apiRssMiB.afterRun} MiB after the run`,
    );
    const ceilingLb = rows.find((r) => r.scenario.startsWith('ceiling') && r.via === 'haproxy')!;
    const writes = rows.find((r) => r.scenario.startsWith('POST /v1/loans') && r.via === 'haproxy')!;
    const targets = [
      [
        `cached read via HAProxy ≥ 50 % of ceiling via HAProxy`,
        hit.rps / ceilingLb.rps >= 0.5,
        `${((hit.rps / ceilingLb.rps) * 100).toFixed(0)} %`,
      ],
      [`cached read p99 < 25 ms at 70 % of max`, constant.p99 < 25, `${constant.p99.toFixed(1)} ms`],
      [`durable writes (borrow + return) ≥ 1000/s`, writes.rps >= 1000, `${writes.rps.toFixed(0)}/s`],
      [`durable writes p99 < 150 ms`, writes.p99 < 150, `${writes.p99.toFixed(1)} ms`],
      [
        `0 errors in every scenario`,
        rows.every((r) => r.errors === 0),
        `${rows.reduce((a, r) => a + r.errors, 0)} errors`,
      ],
    ] as const;
    console.log('\ntargets:');
    for (const [what, met, value] of targets) console.log(`  ${met ? 'met   ' : 'MISSED'} ${what}: ${value}`);
    console.log(`\nwritten to ${file}`);
  } finally {
    for (const [k, v] of restore) etcdPut(k, v);
    stopCeiling();
  }
}

main().catch((error: unknown) => {
  console.error(`bench failed: ${error instanceof Error ? error.stack : String(error)}`);
  process.exit(1);
});
