/**
 * The scenarios of the benchmarks issue, as autocannon request sequences over the fixtures the
 * setup phase created. Each runs through HAProxy and directly against api-1; `cache` is the state
 * of etcd `cache/enabled` the scenario needs and `near` whether the in-process near cache is on
 * (`cache/near_max_entries`); the runner sets both and waits until every instance applies them.
 */
import { topology } from '../stack/topology.js';
import type { Ctx, PacedSource, Req, Step } from './load.js';
import type { TenantFixture } from './setup.js';

export type ScenarioKind = 'ceiling' | 'read' | 'cpu' | 'write' | 'mixed';

export interface Scenario {
  key: string;
  name: string;
  kind: ScenarioKind;
  connections: number;
  steps: Step[];
  cache?: boolean;
  /** with the in-process near cache on (etcd `cache/near_max_entries`); off otherwise */
  near?: boolean;
  /** one request sent before the run to show what the API answers (X-Read-From) */
  probe?: Req;
  /**
   * stack processes stopped (SIGTERM, gracefully) for this scenario's runs and started again
   * after them; the runner then waits until the outbox is empty before the next scenario
   */
  stops?: string[];
  /**
   * run in the bench process over the API's own data services instead of over HTTP
   * (bench/in-process-writes.ts: borrow + return of the lending tenants); `steps` is not used
   */
  inProcess?: boolean;
  note?: string;
}

export interface Fixtures {
  tag: string;
  /** one tenant with 25 books; `books[0]` is the hot book */
  hot: TenantFixture;
  /** registrations go to this (initially empty) tenant */
  registrations: string;
  /** tenants with one book of many copies and several members each, spread over both shards */
  lenders: TenantFixture[];
  /** 100 tenants over both shards, one librarian and two books each */
  mixed: TenantFixture[];
}

export const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

function json(tenant: string, token?: string): Record<string, string> {
  return {
    'X-Tenant-ID': tenant,
    'Content-Type': 'application/json',
    ...(token ? { Authorization: `Bearer ${token}` } : {}),
  };
}

function idOf(body: string): string | undefined {
  try {
    return (JSON.parse(body) as { id?: string }).id;
  } catch {
    return undefined;
  }
}

/** a loan the bench borrowed and has not returned yet, with what returning it needs */
interface OpenLoan {
  tenant: string;
  token: string;
  loan: string;
}

function borrowRequest(tenant: string, token: string, bookId: string): Req {
  return {
    method: 'POST',
    path: '/v1/loans',
    headers: json(tenant, token),
    body: JSON.stringify({ bookId }),
  };
}

function returnRequest({ tenant, token, loan }: OpenLoan): Req {
  return { method: 'POST', path: `/v1/loans/${loan}/return`, headers: json(tenant, token) };
}

/**
 * The lending tenants' borrow + return at a constant rate (bench/load.ts `paced`): each request
 * returns the oldest loan whose borrow was answered, or, when none is waiting, borrows the one
 * book of a random lending tenant as a random member. Over a run that makes half the writes
 * borrows and half returns, as the closed loop's pairs do, without tying a return to the
 * connection that borrowed.
 */
export function pacedLending(f: Fixtures): PacedSource {
  const borrowed: OpenLoan[] = [];
  return {
    next: () => {
      const loan = borrowed.shift();
      if (loan) return { req: returnRequest(loan) };
      const tenant = pick(f.lenders);
      const { token } = pick(tenant.members);
      return {
        req: borrowRequest(tenant.id, token, tenant.books[0]!),
        answered: (status, body) => {
          const id = status === 201 ? idOf(body) : undefined;
          if (id) borrowed.push({ tenant: tenant.id, token, loan: id });
        },
      };
    },
  };
}

export function hotBookRequest(f: Fixtures): Req {
  return { path: `/v1/books/${f.hot.books[0]}`, headers: { 'X-Tenant-ID': f.hot.id } };
}

/**
 * The scenario `key` of `all` that sends HTTP requests to the API (the ones the diagnostics
 * bench/cost.ts, profile.ts and ab.ts can run); throws naming the keys that are, for the
 * ceiling, the in-process writes (bench/data-path.ts runs those) or an unknown key.
 */
export function apiScenario(all: readonly Scenario[], key: string): Scenario {
  const s = all.find((x) => x.key === key);
  const usable = (x: Scenario) => x.kind !== 'ceiling' && !x.inProcess;
  if (!s || !usable(s))
    throw new Error(
      `no API scenario "${key}" (one of ${all
        .filter(usable)
        .map((x) => x.key)
        .join(', ')})`,
    );
  return s;
}

export function scenarios(f: Fixtures): Scenario[] {
  const hotBook = hotBookRequest(f);
  const list: Req = { path: '/v1/books?limit=20', headers: { 'X-Tenant-ID': f.hot.id } };
  let registration = 0;
  // borrow + return pairs of the lending tenants (with and without the email worker)
  const lending: Step[] = [
    {
      // a random member of a random lending tenant borrows that tenant's one book …
      build: (ctx: Ctx) => {
        const tenant = pick(f.lenders);
        const member = pick(tenant.members);
        ctx.tenant = tenant.id;
        ctx.token = member.token;
        return borrowRequest(tenant.id, member.token, tenant.books[0]!);
      },
      onResponse: (status, body, ctx) => {
        if (status === 201) ctx.loan = idOf(body);
      },
    },
    {
      // … and returns it; a failed borrow restarts the pair
      build: (ctx: Ctx) =>
        typeof ctx.loan === 'string'
          ? returnRequest({ tenant: ctx.tenant as string, token: ctx.token as string, loan: ctx.loan })
          : undefined,
    },
  ];
  // loans the mixed workload borrowed and has not returned yet: its writes are half borrows,
  // half returns, so no book runs out of copies
  const open: OpenLoan[] = [];

  return [
    {
      key: 'ceiling',
      name: 'ceiling: bare node:http, fixed JSON',
      kind: 'ceiling',
      connections: 32,
      steps: [{ build: () => ({ path: '/health' }) }],
    },
    {
      key: 'health',
      name: 'GET /health',
      kind: 'read',
      connections: 32,
      steps: [{ build: () => ({ path: '/health' }) }],
    },
    {
      key: 'book-hit',
      name: 'GET /v1/books/{id} cached (HIT)',
      kind: 'read',
      connections: 32,
      cache: true,
      steps: [{ build: () => hotBook }],
    },
    {
      key: 'book-near',
      name: 'GET /v1/books/{id} cached (near cache HIT)',
      kind: 'read',
      connections: 32,
      cache: true,
      near: true,
      note: 'cache/near_max_entries 10000: hits from process memory, kept coherent by Redis tracking',
      steps: [{ build: () => hotBook }],
    },
    {
      key: 'book-uncached',
      name: 'GET /v1/books/{id} uncached (cache off)',
      kind: 'read',
      connections: 32,
      cache: false,
      steps: [{ build: () => hotBook }],
    },
    {
      key: 'list',
      name: 'GET /v1/books?limit=20 (replica, cache off)',
      kind: 'read',
      connections: 32,
      cache: false,
      steps: [{ build: () => list }],
      probe: list,
    },
    {
      key: 'register',
      name: 'POST /v1/members (argon2id, CPU-bound)',
      kind: 'cpu',
      connections: 8,
      cache: true,
      note: 'password hashing by design; reported apart',
      steps: [
        {
          build: () => ({
            method: 'POST',
            path: '/v1/members',
            headers: json(f.registrations),
            body: JSON.stringify({
              email: `reg${registration++}@${f.registrations}.example`,
              name: 'Bench Member',
              password: 'bench password 123',
            }),
          }),
        },
      ],
    },
    {
      key: 'loans',
      name: 'POST /v1/loans + /return (2 shards)',
      kind: 'write',
      connections: 32,
      cache: true,
      note: 'each borrow and each return is one durable transaction with an outbox row',
      steps: lending,
    },
    {
      key: 'loans-mail-off',
      name: 'POST /v1/loans + /return, email worker stopped',
      kind: 'write',
      connections: 32,
      cache: true,
      stops: [topology.worker.name],
      note: 'the API and MariaDB alone: the outbox keeps every email; the worker sends them after the run',
      steps: lending,
    },
    {
      key: 'loans-in-process',
      name: 'borrow + return in-process, no HTTP',
      kind: 'write',
      connections: 32,
      inProcess: true,
      note: 'the ceiling of the write path: the domain over the API data services in the bench process, no HTTP, JWT, HAProxy or generator',
      steps: [],
    },
    {
      key: 'loans-in-process-mail-off',
      name: 'borrow + return in-process, no HTTP, email worker stopped',
      kind: 'write',
      connections: 32,
      inProcess: true,
      stops: [topology.worker.name],
      note: 'the data tier alone: two masters and two replicas with one client that costs only the data layer',
      steps: [],
    },
    {
      key: 'mixed',
      name: 'mixed 90 % read / 10 % write, 100 tenants',
      kind: 'mixed',
      connections: 32,
      cache: true,
      note: 'reads: 70 % GET book, 20 % GET page (both cached); writes: borrow or return',
      steps: [
        {
          build: (ctx: Ctx) => {
            const tenant = pick(f.mixed);
            const r = Math.random();
            ctx.write = undefined;
            if (r < 0.7)
              return { path: `/v1/books/${pick(tenant.books)}`, headers: { 'X-Tenant-ID': tenant.id } };
            if (r < 0.9) return { path: '/v1/books?limit=20', headers: { 'X-Tenant-ID': tenant.id } };
            const token = tenant.members[0]!.token;
            if (open.length > 0 && Math.random() < 0.5) {
              return returnRequest(open.splice(Math.floor(Math.random() * open.length), 1)[0]!);
            }
            ctx.write = { tenant: tenant.id, token };
            return borrowRequest(tenant.id, token, pick(tenant.books));
          },
          onResponse: (status, body, ctx) => {
            const w = ctx.write as { tenant: string; token: string } | undefined;
            if (!w || status !== 201) return;
            const loan = idOf(body);
            if (loan) open.push({ ...w, loan });
          },
        },
      ],
    },
  ];
}
