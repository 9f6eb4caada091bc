/**
 * A CtlContext's call deadline (CALL_TIMEOUT_MS) against a server that answers the dial (HTTP/2)
 * but never a call: the call ends as EtcdUnreachableError "etcd unreachable at <endpoint>: no
 * answer within 3000 ms", no gRPC wording. (Moved here from test/ctl-etcd-unreachable.test.ts,
 * where it ran against a hand-written stand-in for etcd; integration tests break the real etcd.)
 */
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { CALL_TIMEOUT_MS, createCtlContext } from './ctl-context.js';
import { EtcdUnreachableError } from './ctl-errors.js';

const server = createServer();
server.on('stream', () => {}); // takes the call, never answers it
afterAll(() => {
  server.close();
});

describe('CtlContext.call', () => {
  it(
    'gives up on a server that answers HTTP/2 but never a call after CALL_TIMEOUT_MS, in operator words',
    async () => {
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const saved = process.env.SHARDGATE_ETCD_ENDPOINTS;
      process.env.SHARDGATE_ETCD_ENDPOINTS = url;
      let ctx: ReturnType<typeof createCtlContext>;
      try {
        ctx = createCtlContext();
      } finally {
        if (saved === undefined) delete process.env.SHARDGATE_ETCD_ENDPOINTS;
        else process.env.SHARDGATE_ETCD_ENDPOINTS = saved;
      }
      try {
        const error = await ctx.call(() => ctx.etcd.get('/x').string()).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(EtcdUnreachableError);
        expect(String((error as Error).message)).toBe(
          `etcd unreachable at ${url}: no answer within ${CALL_TIMEOUT_MS} ms`,
        );
        expect(String((error as Error).message)).not.toMatch(
          /LB pick|DEADLINE_EXCEEDED|UNAVAILABLE|grpc|Resolution note|name resolution/i,
        );
      } finally {
        ctx.close();
      }
    },
    CALL_TIMEOUT_MS + 10_000,
  );
});
