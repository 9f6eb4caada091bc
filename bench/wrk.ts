/**
 * Debian's `wrk` (C, epoll, one thread per core) as a second load generator: the closed loops of
 * the headline reads, of the ceiling and of borrow + return (a Lua script, `lendingScript`) run
 * once more with it, so their numbers are not an artefact of autocannon, which spends a large
 * share of this 2-core box itself (bench/report.ts shows them beside the verdicts; the verdicts
 * stay autocannon's).
 *
 * `wrk` prints its percentiles only as text; a Lua `done` hook (written to a temporary file)
 * prints the requests, the errors and the exact p50/p95/p99/max of its latency record on one
 * line, which `parseWrk` reads. wrk counts answers outside 2xx/3xx (`errors.status`) and socket
 * errors (connect, read, write, timeout) but not each status code. Its CPU is read from this
 * process's reaped-children time (/proc/self/stat), so it must be the only child running.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { statFields, TICKS_PER_SECOND } from './cpu-usage.js';
import type { LoadResult, Req } from './load.js';

const run = promisify(execFile);

const DONE_HOOK = `done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("SHARDGATE-WRK %d %d %d %d %d %d %d %d %d %d %d\\n",
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
`;

export interface WrkOptions {
  connections?: number;
  seconds?: number;
  /** wrk threads (default 2: one per core of this box) */
  threads?: number;
}

/** the LoadResult of wrk's output, from the hook's line; throws when the line is missing */
export function parseWrk(stdout: string, generatorCpuPercent = Number.NaN): LoadResult {
  const line = /^SHARDGATE-WRK ((?:\d+ ){10}\d+)$/m.exec(stdout);
  if (!line) throw new Error(`wrk printed no summary line:\n${stdout}`);
  const [requests, durationUs, status, connect, read, write, timeout, p50, p95, p99, max] = line[1]!
    .split(' ')
    .map(Number) as [number, number, number, number, number, number, number, number, number, number, number];
  const seconds = durationUs / 1e6;
  const socketErrors = connect + read + write + timeout;
  const ms = (us: number) => us / 1000;
  return {
    seconds,
    requests,
    rps: seconds > 0 ? requests / seconds : 0,
    p50: ms(p50),
    p95: ms(p95),
    p99: ms(p99),
    max: ms(max),
    non2xx: status,
    socketErrors,
    errors: status + socketErrors,
    statusCodes: { '2xx/3xx': requests - status, ...(status > 0 ? { 'not 2xx/3xx': status } : {}) },
    generatorCpuPercent,
  };
}

/** CPU ticks of this process's reaped children (cutime + cstime) */
function childTicks(): number {
  const f = statFields(readFileSync('/proc/self/stat', 'utf8'));
  return Number(f[13]) + Number(f[14]); // cutime(16) + cstime(17)
}

/** a closed loop of `connections` with wrk against `base` + `req` (GET with headers only) */
export async function wrk(base: string, req: Req, options: WrkOptions = {}): Promise<LoadResult> {
  if ((req.method ?? 'GET') !== 'GET' || req.body)
    throw new Error('wrk runs GET requests without a body only');
  const headers = Object.entries(req.headers ?? {}).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
  return runWrk(new URL(req.path, base).toString(), DONE_HOOK, headers, options);
}

/** a lending tenant as the wrk borrow + return script needs it (a TenantFixture): `books[0]` is lent */
export interface LendingTenant {
  id: string;
  books: readonly string[];
  members: readonly { id: string; token: string }[];
}

/** what may go into the script's Lua string literals unquoted: ids, tenant ids and JWTs */
const LUA_SAFE = /^[A-Za-z0-9._-]+$/;

function luaString(value: string, what: string): string {
  if (!LUA_SAFE.test(value))
    throw new Error(`${what} ${JSON.stringify(value)} cannot go into the wrk script`);
  return `"${value}"`;
}

/**
 * The Lua script of the borrow + return closed loop, as wrk runs it: after a borrow's answer the
 * same connection returns that loan; otherwise it borrows the book of a random lending tenant as
 * a random member (autocannon's pairs in bench/scenarios.ts, `lending`). wrk tells a `response`
 * hook neither the request nor the connection, so the loan's own answer names what its return
 * needs: its `id`, and its `bookId` and `memberId`, which map back to the tenant and the
 * member's token; the next `request` of that thread, made for the same connection right after
 * the hook, takes it. Half the writes are borrows and half returns; at the end at most one loan
 * per connection stays out. A refused borrow or return counts in wrk's `errors.status` (every
 * answer ≥ 400), and a borrow that failed is not returned.
 */
export function lendingScript(lenders: readonly LendingTenant[]): string {
  if (lenders.length === 0 || lenders.some((l) => l.members.length === 0 || l.books.length === 0))
    throw new Error('the wrk lending script needs lending tenants with a book and a member each');
  const table = lenders
    .map(
      (l) =>
        `  { id = ${luaString(l.id, 'tenant')}, book = ${luaString(l.books[0]!, 'book id')}, members = {\n` +
        l.members
          .map(
            (m) => `    { id = ${luaString(m.id, 'member id')}, token = ${luaString(m.token, 'token')} },\n`,
          )
          .join('') +
        '  } },\n',
    )
    .join('');
  return `local lenders = {
${table}}
local byBook, byMember = {}, {}
for _, l in ipairs(lenders) do
  byBook[l.book] = l
  for _, m in ipairs(l.members) do byMember[m.id] = m end
end
-- loans this thread saw borrowed and has not sent back yet, oldest first
local open, head, tail = {}, 1, 0

local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

init = function(args)
  math.randomseed(os.time() * 16 + (seed or 0))
end

local function headers(tenant, token)
  return { ["X-Tenant-ID"] = tenant, ["Authorization"] = "Bearer " .. token,
           ["Content-Type"] = "application/json" }
end

request = function()
  if head <= tail then
    local o = open[head]
    open[head] = nil
    head = head + 1
    return wrk.format("POST", "/v1/loans/" .. o.loan .. "/return", headers(o.tenant, o.token))
  end
  local l = lenders[math.random(#lenders)]
  local m = l.members[math.random(#l.members)]
  return wrk.format("POST", "/v1/loans", headers(l.id, m.token), '{"bookId":"' .. l.book .. '"}')
end

response = function(status, hdrs, body)
  if status ~= 201 then return end
  local id = body:match('"id":"([%w._-]+)"')
  local l = byBook[body:match('"bookId":"([%w._-]+)"') or ""]
  local m = byMember[body:match('"memberId":"([%w._-]+)"') or ""]
  if id and l and m then
    tail = tail + 1
    open[tail] = { tenant = l.id, token = m.token, loan = id }
  end
end

${DONE_HOOK}`;
}

/** borrow + return of the lending tenants, a closed loop of `connections` with wrk (lendingScript) */
export async function wrkLending(
  base: string,
  lenders: readonly LendingTenant[],
  options: WrkOptions = {},
): Promise<LoadResult> {
  return runWrk(new URL('/v1/loans', base).toString(), lendingScript(lenders), [], options);
}

/** runs wrk with `script` (which must end with DONE_HOOK) and reads its summary line */
async function runWrk(
  url: string,
  script: string,
  headers: string[],
  { connections = 32, seconds = 6, threads = 2 }: WrkOptions,
): Promise<LoadResult> {
  const dir = mkdtempSync(join(tmpdir(), 'shardgate-wrk-'));
  try {
    const file = join(dir, 'script.lua');
    writeFileSync(file, script);
    const args = [
      `-t${Math.min(threads, connections)}`,
      `-c${connections}`,
      `-d${seconds}s`,
      '--timeout',
      '10s',
      '-s',
      file,
      ...headers,
      url,
    ];
    const ticks0 = childTicks();
    const { stdout } = await run('wrk', args, { timeout: (seconds + 30) * 1000 });
    const cpuSeconds = (childTicks() - ticks0) / TICKS_PER_SECOND;
    return parseWrk(stdout, seconds > 0 ? (cpuSeconds / seconds) * 100 : 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT')
      throw new Error('wrk is not installed (Debian package `wrk`: apt-get install wrk)');
    throw error;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
