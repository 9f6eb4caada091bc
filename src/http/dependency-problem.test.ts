/**
 * A 503 of a dependency names its case in the answer and in the instance's log line alike: an
 * outside check found a `write_contended` (and a `write_outcome_unknown`) logged exactly as an
 * outage, `dependency unavailable` with no code and no tenant.
 */
import { describe, expect, it } from 'vitest';
import { createApp } from '../app.js';
import { MemoryConfigStore } from '../config/memory-config-store.js';
import { MemoryDataAccess } from '../db/memory-data-access.js';
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
});
