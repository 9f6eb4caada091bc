/**
 * What counts as this process being out of descriptors (own-resources.ts), with errors shaped as
 * the libraries give them, and what the breaker and readiness make of it.
 */
import { getSystemErrorName } from 'node:util';
import { describe, expect, it } from 'vitest';
import { toUnavailable } from '../db/mysql-errors.js';
import { createNoopMetrics, type Metrics } from '../observability/metrics.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { CircuitBreaker } from './circuit-breaker.js';
import { DependencyUnavailableError } from './dependency-unavailable.js';
import { ownResourceShortage, ResourceShortage, SHORTAGE_WINDOW_MS } from './own-resources.js';

/** as Node's `net` reports a connect it could not make (exceptionWithHostPort): code, negative errno, syscall */
function netError(code: 'EMFILE' | 'ENFILE' | 'ECONNREFUSED', port = 3316): NodeJS.ErrnoException {
  const errno = { EMFILE: -24, ENFILE: -23, ECONNREFUSED: -111 }[code];
  expect(getSystemErrorName(errno)).toBe(code);
  return Object.assign(new Error(`connect ${code} 127.0.0.1:${port} - Local (undefined:undefined)`), {
    errno,
    code,
    syscall: 'connect',
    address: '127.0.0.1',
    port,
  });
}

/** mysql2 passes the socket's error on to the pool's caller, marked fatal (Connection._handleNetworkError) */
const mysql2Error = (code: 'EMFILE' | 'ENFILE' | 'ECONNREFUSED') =>
  Object.assign(netError(code), { fatal: true });

const settings = {
  failure_threshold: 3,
  reset_timeout_ms: 5000,
  half_open_max_calls: 1,
  call_timeout_ms: 1000,
};

describe('ownResourceShortage', () => {
  it('finds EMFILE and ENFILE as mysql2, ioredis, drizzle, the breaker guard, grpc-js and happy eyeballs give them', () => {
    expect(ownResourceShortage(mysql2Error('EMFILE'))).toBe('EMFILE');
    // ioredis emits the socket's own error
    expect(ownResourceShortage(netError('ENFILE', 6380))).toBe('ENFILE');
    // only errno and syscall (a library that dropped the code)
    expect(ownResourceShortage(Object.assign(new Error('x'), { errno: -24, syscall: 'connect' }))).toBe(
      'EMFILE',
    );
    // drizzle's wrapper
    expect(ownResourceShortage(new Error('Failed query: insert …', { cause: mysql2Error('EMFILE') }))).toBe(
      'EMFILE',
    );
    // mysql-errors.ts's DependencyUnavailableError, renamed by the breaker guard with it as cause
    const adapter = toUnavailable('127.0.0.1:3316/shardgate', mysql2Error('EMFILE'));
    expect(ownResourceShortage(adapter)).toBe('EMFILE');
    const guarded = new DependencyUnavailableError('mysql-master:shard-1', adapter.reason, {
      cause: adapter,
    });
    expect(ownResourceShortage(guarded)).toBe('EMFILE');
    // grpc-js (etcd3): a status error that says it in its message only
    const grpc = Object.assign(
      new Error(
        '14 UNAVAILABLE: No connection established. Last error: connect EMFILE 127.0.0.1:2379 - Local (undefined:undefined)',
      ),
      { code: 14, details: 'No connection established' },
    );
    expect(ownResourceShortage(grpc)).toBe('EMFILE');
    // Node's autoSelectFamily: one error per address tried
    expect(ownResourceShortage(new AggregateError([netError('ECONNREFUSED'), netError('EMFILE')]))).toBe(
      'EMFILE',
    );
  });

  it("leaves the dependency's own failures alone", () => {
    expect(ownResourceShortage(mysql2Error('ECONNREFUSED'))).toBeUndefined();
    // MariaDB's own errnos come without a syscall (24 is not EMFILE there)
    expect(
      ownResourceShortage(Object.assign(new Error('Too many connections'), { errno: 1040 })),
    ).toBeUndefined();
    expect(ownResourceShortage(Object.assign(new Error('x'), { errno: 24 }))).toBeUndefined();
    expect(ownResourceShortage(new Error('file EMFILES'))).toBeUndefined();
    expect(ownResourceShortage('EMFILE')).toBeUndefined();
    expect(ownResourceShortage(undefined)).toBeUndefined();
  });

  it("never reads a shortage in a client's data: a statement's parameters, a server's message, an adapter's reason", () => {
    // a review: drizzle puts a statement's parameters in its message, and a deadlock on a claim
    // with `Idempotency-Key: EMFILE` was taken for this process out of descriptors
    const deadlock = Object.assign(new Error('Deadlock found when trying to get lock'), {
      code: 'ER_LOCK_DEADLOCK',
      errno: 1213,
      sqlState: '40001',
    });
    const drizzle = Object.assign(
      new Error('Failed query: insert into `idempotency_keys` … values (?, ?)\nparams: acme,EMFILE', {
        cause: deadlock,
      }),
      { query: 'insert …', params: ['acme', 'EMFILE'] },
    );
    expect(ownResourceShortage(drizzle)).toBeUndefined();
    expect(ownResourceShortage(new Error('a title: EMFILE'))).toBeUndefined();
    // a server error whose text names it (a message is never read but grpc-js's shape)
    const server = Object.assign(new Error("Duplicate entry 'EMFILE' for key 'PRIMARY'"), {
      code: 'ER_DUP_ENTRY',
      errno: 1062,
      sqlState: '23000',
    });
    expect(ownResourceShortage(server)).toBeUndefined();
    // the adapter's error for a driver message that names it, without the code
    expect(ownResourceShortage(toUnavailable('n', new Error('connect EMFILE')))).toBeUndefined();
  });
});

describe('a breaker meeting EMFILE', () => {
  it('counts it as neither failure nor success, and tells onOwnShortage', async () => {
    const told: string[] = [];
    const breaker = new CircuitBreaker({
      name: 'mysql-master:shard-1',
      kind: 'mysql-master',
      settings: () => settings,
      stalledMs: () => 0,
      onOwnShortage: (code) => told.push(code),
    });
    const isFailure = () => true;
    await expect(breaker.execute(async () => 'ok', { isFailure })).resolves.toBe('ok');
    for (let i = 0; i < 10; i++) {
      const adapter = toUnavailable('127.0.0.1:3316/shardgate', mysql2Error('EMFILE'));
      await expect(
        breaker.execute(() => Promise.reject(adapter), { isFailure, writes: i % 2 === 0 }),
      ).rejects.toBe(adapter);
    }
    expect([breaker.state, breaker.view().failures]).toEqual(['closed', 0]);
    expect(told).toHaveLength(10);
    // the node's own failure still counts
    for (let i = 0; i < 3; i++)
      await expect(
        breaker.execute(() => Promise.reject(toUnavailable('n', mysql2Error('ECONNREFUSED')))),
      ).rejects.toThrow();
    expect(breaker.state).toBe('open');
  });

  it('does not look for one in what it does not count as the node failing (a conflict, a statement error)', async () => {
    const told: string[] = [];
    const breaker = new CircuitBreaker({
      name: 'mysql-master:shard-1',
      kind: 'mysql-master',
      settings: () => settings,
      stalledMs: () => 0,
      onOwnShortage: (code) => told.push(code),
    });
    const conflict = Object.assign(new Error('conflict'), { cause: mysql2Error('EMFILE') });
    await expect(breaker.execute(() => Promise.reject(conflict), { isFailure: () => false })).rejects.toBe(
      conflict,
    );
    expect(told).toEqual([]);
  });
});

describe('ResourceShortage', () => {
  function shortage(softLimit?: number) {
    let now = 1000;
    const { logger, lines } = recordingLogger();
    const counted: unknown[] = [];
    const metrics: Metrics = {
      ...createNoopMetrics(),
      counter: () => ({ inc: (labels) => counted.push(labels) }),
    };
    const s = new ResourceShortage({ logger, metrics, softLimit: () => softLimit, now: () => now });
    return { s, lines, counted, advance: (ms: number) => (now += ms) };
  }

  it('is current for SHORTAGE_WINDOW_MS after the last one, naming the code and the soft limit', () => {
    const { s, advance } = shortage(64);
    expect(s.current()).toBeUndefined();
    s.note('EMFILE', 'mysql-master:shard-1');
    expect(s.current()).toEqual({ code: 'EMFILE', agoMs: 0, softLimit: 64 });
    advance(SHORTAGE_WINDOW_MS - 1);
    expect(s.current()?.code).toBe('EMFILE');
    s.note('ENFILE', 'redis');
    advance(SHORTAGE_WINDOW_MS);
    expect(s.current()?.code).toBe('ENFILE');
    advance(1);
    expect(s.current()).toBeUndefined();
  });

  it('counts each one and warns once a minute at most, with the soft limit where known', () => {
    const { s, lines, counted, advance } = shortage(64);
    for (let i = 0; i < 50; i++) s.note('EMFILE', 'mysql-master:shard-1', mysql2Error('EMFILE'));
    expect(counted).toHaveLength(50);
    expect(counted[0]).toEqual({ code: 'EMFILE' });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 'warn',
      obj: { code: 'EMFILE', dependency: 'mysql-master:shard-1', softLimit: 64 },
    });
    expect(lines[0]!.msg).toMatch(/out of file descriptors/);
    advance(60_000);
    s.note('EMFILE', 'mysql-master:shard-1');
    expect(lines).toHaveLength(2);
    expect(lines[1]!.obj).toMatchObject({ repeatsSinceLast: 49 });
    expect(shortage().s.current()).toBeUndefined();
  });
});
