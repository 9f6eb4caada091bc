/**
 * A 503 of a dependency names its case in the answer and in the instance's log line alike: an
 * outside check found a `write_contended` (and a `write_outcome_unknown`) logged exactly as an
 * outage, `dependency unavailable` with no code and no tenant.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
import { toServerShortage } from '../db/mysql-errors.js';
import type { DataAccess } from '../domain/data-access.js';
import { CallTimeoutError, DependencyError } from '../resilience/errors.js';
import { callApp } from '../testing/call-app.js';
import { createMemoryServices } from '../testing/memory-services.js';
import { recordingLogger } from '../testing/recording-logger.js';
import { dependencyProblem } from './dependency-problem.js';

const MASTER = 'mysql-master:shard-1';
const rowLock = new CallTimeoutError(MASTER, 2000, {
  mayHaveApplied: false,
  dependencyStuck: false,
  waitedFor: 'row-lock',
});

describe('dependencyProblem', () => {
  it('tells a write that may have applied, one never sent, one that waited on its own row lock, and an outage', () => {
    const cases: [DependencyError, string][] = [
      [
        new CallTimeoutError(MASTER, 2000, { mayHaveApplied: true, dependencyStuck: true }),
        'write_outcome_unknown',
      ],
      [new DependencyError(MASTER, 'lost', { outcomeUnknown: true }), 'write_outcome_unknown'],
      [new DependencyError(MASTER, 'pool full', { busy: true }), 'dependency_busy'],
      [
        new CallTimeoutError(MASTER, 2000, {
          mayHaveApplied: false,
          dependencyStuck: false,
          waitedFor: 'connection',
        }),
        'dependency_busy',
      ],
      [rowLock, 'write_contended'],
      [
        new CallTimeoutError(MASTER, 2000, { mayHaveApplied: false, dependencyStuck: true }),
        'dependency_unavailable',
      ],
      [new DependencyError(MASTER, 'ECONNREFUSED'), 'dependency_unavailable'],
      // this process out of descriptors: as the breaker guard gives mysql2's fatal socket error
      [
        new DependencyError(MASTER, 'EMFILE', {
          cause: Object.assign(new Error('connect EMFILE 127.0.0.1:3316 - Local (undefined:undefined)'), {
            code: 'EMFILE',
            errno: -24,
            syscall: 'connect',
            fatal: true,
          }),
        }),
        'instance_out_of_resources',
      ],
      [
        new DependencyError(MASTER, 'EE_WRITE', { serverShortage: 'disk_space', writesOnly: true }),
        'dependency_out_of_resources',
      ],
      [
        new DependencyError(MASTER, 'ER_OUT_OF_RESOURCES', { serverShortage: 'memory' }),
        'dependency_out_of_resources',
      ],
      // failed at its COMMIT: the existing rule for an uncertain COMMIT
      [
        new DependencyError(MASTER, 'EE_WRITE', { serverShortage: 'disk_space', outcomeUnknown: true }),
        'write_outcome_unknown',
      ],
    ];
    expect(cases.map(([error]) => dependencyProblem(error).code)).toEqual(cases.map(([, code]) => code));
  });

  it('says an instance out of descriptors is this instance, not the dependency, with Retry-After', () => {
    const problem = dependencyProblem(
      new DependencyError(MASTER, `${MASTER}: ENFILE`, {
        cause: Object.assign(new Error('x'), { code: 'ENFILE' }),
      }),
    );
    expect([problem.status, problem.code, problem.headers]).toEqual([
      503,
      'instance_out_of_resources',
      { 'Retry-After': '1' },
    ]);
    expect(problem.detail).toMatch(
      /^this instance ran out of the system's file table \(ENFILE\).*itself may be fine/,
    );
  });

  it("logs the answer's code and the tenant with the call's error", async () => {
    const { logger, lines } = recordingLogger();
    const config = new MemoryConfigStore({
      initial: {
        'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
        'tenants/acme': '{"shard":"shard-1","status":"active"}',
      },
    });
    const memory = new MemoryDataAccess();
    const data: DataAccess = {
      read: (tenant, options, fn) => memory.read(tenant, options, fn),
      admitWrite: (tenant) => memory.admitWrite(tenant),
      write: async () => {
        throw rowLock;
      },
    };
    const app = createApp(createMemoryServices({ config, data, logger }));
    const res = await callApp(app, 'POST', '/v1/members', {
      body: { email: 'a@example.com', name: 'A', password: 'correct horse' },
    });
    expect([res.status, res.json.code]).toEqual([503, 'write_contended']);
    const line = lines.find((l) => (l.obj as { dependency?: string }).dependency === MASTER);
    expect(line?.level).toBe('warn');
    expect(line?.msg).toBe("write contended: it waited on its tenant's own row locks, not applied");
    expect(line?.obj).toMatchObject({
      code: 'write_contended',
      tenant: 'acme',
      requestId: res.json.requestId,
    });
  });

  it('names a master out of disk space, says nothing was written, and logs it at warn, never as an unhandled error', async () => {
    const { logger, lines } = recordingLogger();
    const config = new MemoryConfigStore({
      initial: {
        'shards/shard-1': JSON.stringify({ master: { host: '127.0.0.1', port: 3316 }, replicas: [] }),
        'tenants/acme': '{"shard":"shard-1","status":"active"}',
      },
    });
    const memory = new MemoryDataAccess();
    // what the master's node set throws for the binlog write an outside check saw fail
    const full = toServerShortage(
      MASTER,
      Object.assign(
        new Error('Error writing file \'/tmp/m/mysql-bin.000003\' (Errcode: 28 "No space left on device")'),
        {
          errno: 3,
          code: 'EE_WRITE',
          sqlState: 'HY000',
        },
      ),
    );
    const data: DataAccess = {
      read: (tenant, options, fn) => memory.read(tenant, options, fn),
      admitWrite: (tenant) => memory.admitWrite(tenant),
      write: async () => {
        throw full;
      },
    };
    const app = createApp(createMemoryServices({ config, data, logger }));
    const res = await callApp(app, 'POST', '/v1/members', {
      body: { email: 'a@example.com', name: 'A', password: 'correct horse' },
    });
    expect([res.status, res.json.code, res.res.headers.get('Retry-After')]).toEqual([
      503,
      'dependency_out_of_resources',
      '1',
    ]);
    expect(res.res.headers.get('Content-Type')).toContain('application/problem+json');
    expect(res.json.detail).toBe(
      `${MASTER} is out of disk space: the request failed there and nothing was written. Retry in 1 s`,
    );
    // the server's text (its file names) stays in the log
    expect(JSON.stringify(res.json)).not.toContain('mysql-bin');
    expect(lines.some((l) => l.msg === 'unhandled error')).toBe(false);
    const line = lines.find((l) => (l.obj as { dependency?: string }).dependency === MASTER);
    expect(line?.level).toBe('warn');
    expect(line?.obj).toMatchObject({ code: 'dependency_out_of_resources', tenant: 'acme' });
    expect((line?.obj as { err: string }).err).toContain('Errcode: 28');
  });
});
