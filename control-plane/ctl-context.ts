/**
 * What every command needs: the env (parsed by the API's own schema), one etcd client that fails
 * fast (no retries, short deadline), the key prefix, and output helpers.
 */
import type { Etcd3 } from 'etcd3';
import { createEtcdClient } from '../src/config/etcd-client.js';
import { type Env, EnvError, parseEnv } from '../src/env.js';
import { EtcdUnreachableError, UserError } from './ctl-errors.js';

export interface CtlContext {
  env: Env;
  etcd: Etcd3;
  prefix: string;
  out: (line: string) => void;
  /** one line on stderr, `shardgate-ctl: <line>`: a warning that does not stop the command */
  warn: (line: string) => void;
  /** run an etcd call; any transport failure becomes EtcdUnreachableError (exit 2) */
  call<T>(fn: () => Promise<T>): Promise<T>;
  close(): void;
}

export function createCtlContext(): CtlContext {
  let env: Env;
  try {
    env = parseEnv(process.env);
  } catch (error) {
    if (error instanceof EnvError) throw new UserError(error.message);
    throw error;
  }
  const etcd = createEtcdClient({ endpoints: env.SHARDGATE_ETCD_ENDPOINTS, callTimeoutMs: 3000, retries: 0 });
  return {
    env,
    etcd,
    prefix: env.SHARDGATE_ETCD_PREFIX,
    out: (line) => process.stdout.write(`${line}\n`),
    warn: (line) => process.stderr.write(`shardgate-ctl: ${line}\n`),
    async call(fn) {
      try {
        return await fn();
      } catch (error) {
        if (error instanceof UserError) throw error;
        const message = error instanceof Error ? error.message : String(error);
        throw new EtcdUnreachableError(
          `etcd unreachable at ${env.SHARDGATE_ETCD_ENDPOINTS.join(',')}: ${message.split('\n')[0]!.replace(/\s*Resolution note:.*$/, '')}`,
        );
      }
    },
    close: () => etcd.close(),
  };
}
