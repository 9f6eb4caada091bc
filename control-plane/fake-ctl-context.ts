/**
 * For unit tests of the CLI's etcd steps: a CtlContext over `etcd`, a stand-in holding only the
 * parts of an Etcd3 the step under test calls; `call` runs its function as it is (no dial, no
 * mapping of errors), and every line printed goes to `out`. Prefix `/sg/`.
 */
import type { CtlContext } from './ctl-context.js';

export function fakeCtlContext(etcd: unknown, out: string[] = []): CtlContext {
  return {
    prefix: '/sg/',
    env: {},
    out: (line: string) => out.push(line),
    warn: () => {},
    call: <T>(fn: () => Promise<T>) => fn(),
    close: () => {},
    etcd,
  } as unknown as CtlContext;
}
