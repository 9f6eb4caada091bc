import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { LogVerbosity } from '@grpc/grpc-js/build/src/constants.js';
import * as grpcLogging from '@grpc/grpc-js/build/src/logging.js';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { routeGrpcLog } from './grpc-log.js';

const original = grpcLogging.getLogger();
afterEach(() => grpcLogging.setLogger(original));

describe('routeGrpcLog', () => {
  it('sets the logger of the grpc-js that etcd3 loads: one copy in node_modules', () => {
    const require = createRequire(import.meta.url);
    const fromEtcd3 = createRequire(require.resolve('etcd3')).resolve('@grpc/grpc-js');
    expect(fromEtcd3).toBe(require.resolve('@grpc/grpc-js'));
  });

  it("turns grpc-js's plain-text lines into one JSON warning each, or drops them", () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        lines.push(String(chunk));
        done();
      },
    });
    routeGrpcLog(pino({ base: null, timestamp: false }, sink));
    grpcLogging.log(
      LogVerbosity.ERROR,
      'Connection to %s rejected by server because of excess pings',
      'dns:x:2379',
    );
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        level: 40,
        component: 'grpc',
        msg: 'Connection to dns:x:2379 rejected by server because of excess pings',
      },
    ]);
    routeGrpcLog(undefined);
    expect(() => grpcLogging.log(LogVerbosity.ERROR, 'dropped')).not.toThrow();
    expect(lines).toHaveLength(1);
  });
});
