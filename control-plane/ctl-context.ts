/**
 * What every command needs: the env (the variables it reads, parsed by the API's own schema), one etcd client that fails
 * fast (no retries, short deadline), the key prefix, and output helpers.
 *
 * An etcd that cannot serve is an EtcdUnreachableError (exit 2) with ONE line,
 * `etcd unreachable at <endpoints>: <reason>`, the reason in operator words (never gRPC status
 * names or call diagnostics such as "Waiting for LB pick"):
 * - nothing listens: `connection refused`, at once;
 * - frozen (SIGSTOP) or black-holed: the kernel still accepts the TCP connection but nobody
 *   answers: `no answer within DIAL_TIMEOUT_MS ms`. Before its first etcd call the context dials
 *   the endpoints over HTTP/2 (etcd's gRPC transport) and waits for a server's SETTINGS frame.
 *   etcd3 1.1.2 has no dial timeout (its `dialTimeout` option is read nowhere, microsoft/etcd3#137):
 *   a call to such an etcd waits in gRPC's connect phase until its deadline, and then etcd3's reset
 *   of the still-connecting channel (`waitForReady(now + 1 s)`, its grpc-node#1487 workaround) holds
 *   the process one more second — with the launcher's start-up that made 6–7 s. A failed dial opens
 *   no gRPC channel, so the command exits as soon as its line is written.
 * - answered the dial but not a call within CALL_TIMEOUT_MS (it froze mid-command, or is
 *   overloaded): `no answer within CALL_TIMEOUT_MS ms`. Should it freeze between the dial and the
 *   first call's connect, that call costs the deadline plus etcd3's 1 s.
 * With several endpoints the dial succeeds when any answers; etcd3 then picks endpoints at random.
 * A call that meets one where nothing listens goes on to the next (createEtcdClient: nothing of it
 * was sent, so `retries: 0` still never repeats a write), and one live endpoint is enough; a call
 * may still meet a frozen one and wait out its deadline.
 *
 * etcd that answers and refuses the credentials (SHARDGATE_ETCD_USERNAME / _PASSWORD) or a role's
 * permission is reachable: a UserError (exit 1) naming it, `etcd refused: authentication …`
 * (etcd-dial.ts etcdRefusal).
 */
import type { Etcd3 } from 'etcd3';
import { createEtcdClient, isConnectFailure } from '../src/config/etcd-client.js';
import { routeGrpcLog } from '../src/config/grpc-log.js';
import { type Env, EnvError, etcdCredentials, parseEnvOf } from '../src/env.js';
import { EtcdUnreachableError, UserError } from './ctl-errors.js';
import { NOT_CONNECTED_REASONS } from './errno-reason.js';
import { DIAL_TIMEOUT_MS, dialEtcd, etcdFailureReason, etcdRefusal } from './etcd-dial.js';
import { terminalSafe } from './terminal-safe.js';

/**
 * the environment variables shardgate-ctl reads (CONTRACT.md §3); the others are the API's and
 * the worker's, and a malformed one of those does not stop a command
 */
export const CTL_ENV = [
  'SHARDGATE_ETCD_ENDPOINTS',
  'SHARDGATE_ETCD_PREFIX',
  'SHARDGATE_ETCD_USERNAME',
  'SHARDGATE_ETCD_PASSWORD',
  'SHARDGATE_DB_USER',
  'SHARDGATE_DB_PASSWORD',
  'SHARDGATE_DB_HOSTS',
  'SHARDGATE_REDIS_URL',
  'SHARDGATE_AMQP_URL',
  'SHARDGATE_HAPROXY_SOCKET',
  'SHARDGATE_WORKER_URLS',
] as const;
export type CtlEnv = Pick<Env, (typeof CTL_ENV)[number]>;

/** the end of the line of a write etcd did not answer (CtlContext.call) */
export const WRITE_OUTCOME_UNKNOWN =
  'etcd may have applied the write: read it back (shardgate-ctl status, tenants show, etcdctl get) before repeating it';

/** deadline of each etcd call of a command */
export const CALL_TIMEOUT_MS = 3000;

export interface CtlContext {
  env: CtlEnv;
  etcd: Etcd3;
  prefix: string;
  out: (line: string) => void;
  /** one line on stderr, `shardgate-ctl: <line>`: a warning that does not stop the command */
  warn: (line: string) => void;
  /**
   * run an etcd call (the first one after a dial, see above); any transport failure becomes
   * EtcdUnreachableError (exit 2). `write`: the call changes keys, and one not answered (other
   * than for want of a connection) may have been applied, which its line says
   */
  call<T>(fn: () => Promise<T>, opts?: { write?: boolean }): Promise<T>;
  close(): void;
}

export function createCtlContext(): CtlContext {
  let env: CtlEnv;
  try {
    env = parseEnvOf(process.env, CTL_ENV);
  } catch (error) {
    if (error instanceof EnvError) throw new UserError(error.message);
    throw error;
  }
  const endpoints = env.SHARDGATE_ETCD_ENDPOINTS;
  const unreachable = (reason: string) =>
    new EtcdUnreachableError(`etcd unreachable at ${endpoints.join(',')}: ${reason}`);
  // gRPC's own stderr lines would add to the command's one line of its own (grpc-log.ts)
  routeGrpcLog(undefined);
  const etcd = createEtcdClient({
    endpoints,
    callTimeoutMs: CALL_TIMEOUT_MS,
    retries: 0,
    auth: etcdCredentials(env),
  });
  let dialed: Promise<void> | undefined;
  const dial = async () => {
    const reason = await dialEtcd(endpoints, DIAL_TIMEOUT_MS);
    if (reason !== undefined) throw unreachable(reason);
  };
  return {
    env,
    etcd,
    prefix: env.SHARDGATE_ETCD_PREFIX,
    out: (line) => process.stdout.write(`${terminalSafe(line)}\n`),
    warn: (line) => process.stderr.write(`shardgate-ctl: ${terminalSafe(line)}\n`),
    async call(fn, opts) {
      dialed ??= dial();
      await dialed;
      try {
        return await fn();
      } catch (error) {
        if (error instanceof UserError) throw error;
        const refused = etcdRefusal(error);
        if (refused) throw new UserError(refused);
        const reason = etcdFailureReason(error, CALL_TIMEOUT_MS);
        // etcd answers a write after committing it: one sent and not answered may be in force.
        // Exit 2 alone read as "nothing written" (an outside check: a tenant status change,
        // reported unreachable, was applied). Only a failure to connect sent nothing; a deadline
        // is taken as possibly sent, though it may have run out while still connecting
        if (opts?.write && !isConnectFailure(error) && !NOT_CONNECTED_REASONS.has(reason))
          throw unreachable(`${reason}; ${WRITE_OUTCOME_UNKNOWN}`);
        throw unreachable(reason);
      }
    },
    close: () => etcd.close(),
  };
}
