/**
 * Test support for the unit tests of commands and their etcd calls: real CtlContexts (their
 * call() maps errors to exit codes as every command's does) with `etcd` replaced by a fake the
 * test gives. Their dial reaches a local HTTP/2 server that answers it and nothing else; their
 * prefix is `/sg/`, the rest of their env is process.env's. close() stops the server.
 */
import { createServer } from 'node:http2';
import type { AddressInfo } from 'node:net';
import type { Etcd3 } from 'etcd3';
import { type CtlContext, createCtlContext } from '../../control-plane/ctl-context.js';

export interface CtlContextStub {
  /** a context whose etcd calls go to `etcd` (the parts of an Etcd3 the test needs) */
  withEtcd(etcd: unknown): CtlContext;
  close(): void;
}

export async function ctlContextStub(): Promise<CtlContextStub> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const env = {
    SHARDGATE_ETCD_ENDPOINTS: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    SHARDGATE_ETCD_PREFIX: '/sg/',
  };
  return {
    withEtcd(etcd) {
      // the context parses process.env once, when it is created: set for that moment only
      const saved = Object.fromEntries(Object.keys(env).map((name) => [name, process.env[name]]));
      Object.assign(process.env, env);
      let ctx: CtlContext;
      try {
        ctx = createCtlContext();
      } finally {
        for (const [name, value] of Object.entries(saved)) {
          if (value === undefined) delete process.env[name];
          else process.env[name] = value;
        }
      }
      ctx.close();
      ctx.etcd = etcd as Etcd3;
      return ctx;
    },
    close: () => server.close(),
  };
}
