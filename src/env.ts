/**
 * The one zod schema of the process environment (CONTRACT.md §3), parsed once at an entry and
 * nowhere else. A missing or malformed required variable stops the process with one line naming it.
 */
import { z } from 'zod';
import { parseDbHosts } from './config/db-hosts.js';
import { INSTANCE_ID_PATTERN } from './config/schema.js';

/** a URL of one of these schemes, e.g. `urlOf('amqp', 'amqps')` */
const urlOf = (...schemes: string[]) =>
  z.url({
    protocol: new RegExp(`^(${schemes.join('|')})$`),
    error: (issue) =>
      issue.input === undefined
        ? undefined
        : `must be a URL such as ${schemes[0]}://host:port (scheme ${schemes.join(' or ')})`,
  });

/**
 * An address to listen on: an IPv4 or IPv6 literal (bare, no brackets) or a hostname (RFC 1123).
 * A dotted all-numeric name is not taken for a hostname (`300.1.1.1`, `10.0.1`): it is a
 * mistyped address, which would otherwise fail only at listen time (or resolve somewhere else).
 */
const listenHost = z
  .string()
  .refine(
    (s) =>
      z.ipv4().safeParse(s).success ||
      z.ipv6().safeParse(s).success ||
      (z.hostname().safeParse(s).success && !/^[\d.]+$/.test(s)),
    { error: 'must be an IP address or a hostname, e.g. 127.0.0.1, ::1, 0.0.0.0 or api.internal' },
  );

/**
 * One etcd endpoint or worker health port: scheme, host and port only (a trailing `/` is
 * dropped). The etcd client dials `host:port` and drops the rest, so a user and password in the
 * URL would be neither sent nor kept secret (they end up in the gRPC target and its errors), and a
 * path or query would be silently ignored. `noCredentials` says why a user and password are
 * refused, for the variable's own error.
 */
const hostPortUrl = (noCredentials: string) =>
  urlOf('http', 'https')
    .superRefine((s, ctx) => {
      // zod runs this after a failed URL check too; that check has said what is wrong
      const url = URL.canParse(s) ? new URL(s) : undefined;
      if (!url) return;
      if (url.username || url.password)
        ctx.addIssue({ code: 'custom', message: `must not hold a user or password: ${noCredentials}` });
      else if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.hash)
        ctx.addIssue({ code: 'custom', message: 'must be scheme://host:port only, without a path or query' });
    })
    // `http://etcd:2379/` as `http://etcd:2379`: the client takes the text after the scheme for
    // the gRPC target, where a trailing slash is no address
    .transform((s) => (URL.canParse(s) ? `${new URL(s).protocol}//${new URL(s).host}` : s));

const urlListOf = (noCredentials: string) =>
  z
    .string()
    .transform((s) => s.split(',').map((x) => x.trim()))
    .pipe(z.array(hostPortUrl(noCredentials)).min(1));

export const envSchema = z.object({
  PORT: z.coerce.number().int().min(1).max(65535).default(8787),
  /**
   * the address every listener of the process binds: the API's HTTP port, its agent-check port
   * and the worker's metrics port. Loopback by default (CONTRACT.md §2: "all on 127.0.0.1");
   * `0.0.0.0` / `::` for a container reached from another one (docker/compose.yml)
   */
  SHARDGATE_LISTEN_HOST: listenHost.default('127.0.0.1'),
  /** `embedded` (no external services) is announced by the contract but not built yet */
  SHARDGATE_MODE: z.enum(['cluster']).default('cluster'),
  SHARDGATE_INSTANCE_ID: z.string().regex(INSTANCE_ID_PATTERN).optional(),
  SHARDGATE_ETCD_ENDPOINTS: urlListOf(
    'set SHARDGATE_ETCD_USERNAME and SHARDGATE_ETCD_PASSWORD for etcd authentication',
  ).default(['http://127.0.0.1:2379']),
  /**
   * the etcd user every etcd call of the process authenticates as (etcd3's `auth` option; its
   * roles must grant what the process reads and writes: docs/configuration.md, "etcd
   * authentication"). Both or neither (checked in checkAcrossVariables); empty is unset (`${X:-}`
   * in a compose file). Neither: calls carry no token, which an etcd with auth enabled refuses
   * ("user name is empty"). The password is never logged or repeated in an error.
   */
  SHARDGATE_ETCD_USERNAME: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  SHARDGATE_ETCD_PASSWORD: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  SHARDGATE_ETCD_PREFIX: z
    .string()
    .regex(/^\/(.+\/)?$/, 'must start and end with "/"')
    .default('/shardgate/'),
  SHARDGATE_REDIS_URL: urlOf('redis', 'rediss').default('redis://127.0.0.1:6380'),
  SHARDGATE_AMQP_URL: urlOf('amqp', 'amqps').default('amqp://guest:guest@127.0.0.1:5673'),
  SHARDGATE_DB_USER: z.string().min(1).default('shardgate'),
  SHARDGATE_DB_PASSWORD: z.string().optional(),
  /** the database servers a shard in etcd may name (src/config/db-hosts.ts); unset = any */
  SHARDGATE_DB_HOSTS: z
    .string()
    .transform((text, ctx) => {
      try {
        return parseDbHosts(text);
      } catch (error) {
        ctx.addIssue({ code: 'custom', message: (error as Error).message });
        return z.NEVER;
      }
    })
    .optional(),
  SHARDGATE_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  /**
   * a second secret that is accepted wherever the JWT secret is checked (member tokens,
   * consistency tokens, idempotency fingerprints, a registration's key, the login throttle's
   * counts) but never signs, seals or keys anything new: the other secret of a rotation (the next
   * one while it is rolled out, then the one before; docs/operations.md, "Rotating credentials"). Must differ from
   * SHARDGATE_JWT_SECRET (checked in parseEnv). Empty is unset (`${X:-}` in a compose file).
   */
  SHARDGATE_JWT_SECRET_ACCEPTED: z.preprocess(
    (v) => (v === '' ? undefined : v),
    z.string().min(32, 'must be at least 32 characters').optional(),
  ),
  SHARDGATE_SMTP_URL: urlOf('smtp', 'smtps').default('smtp://127.0.0.1:2525'),
  SHARDGATE_MAIL_FROM: z.email().default('no-reply@shardgate.local'),
  /** TCP port answering HAProxy agent-check (drain / weight %); unset = no agent */
  SHARDGATE_AGENT_PORT: z.coerce.number().int().min(1).max(65535).optional(),
  /** this instance's weight in haproxy.cfg (agent-check percentages are relative to it) */
  SHARDGATE_LB_INITIAL_WEIGHT: z.coerce.number().int().min(1).max(256).default(1),
  /**
   * the consistency token version this instance issues (routing/consistency-token.ts): `v1` only
   * while instances of a release before v2 tokens still run beside it (they answer a v2 token 400)
   */
  SHARDGATE_CONSISTENCY_TOKENS: z.enum(['v1', 'v2']).default('v2'),
  /** on SIGTERM: how long /health/ready answers 503 before the instance stops accepting */
  SHARDGATE_DRAIN_MS: z.coerce.number().int().min(0).max(600_000).default(2500),
  /**
   * after the drain: how long requests still open may finish before their connections are
   * closed (a client that never finishes its body must not hold the instance up)
   */
  SHARDGATE_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).max(600_000).default(10_000),
  /**
   * password checks and hashes (argon2id) an API instance runs at once, taking turns by tenant
   * (auth/password-work-gate.ts); unset = the machine's cores less one, 1 to 3 (under libuv's 4 threads)
   */
  SHARDGATE_PASSWORD_WORK_CONCURRENCY: z.coerce.number().int().min(1).max(64).optional(),
  /** deliveries of one email before it goes to the dead-letter queue */
  SHARDGATE_MAIL_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(20).default(5),
  /** port of the email worker's /metrics (0 = off) */
  SHARDGATE_WORKER_METRICS_PORT: z.coerce.number().int().min(0).max(65535).default(0),
  /**
   * the email workers' metrics ports that `shardgate-ctl status` asks for their breakers and
   * rejected keys (`http://host:port`, comma separated); unset = the local stack's worker
   */
  SHARDGATE_WORKER_URLS: urlListOf("a worker's health port takes none").optional(),
  /**
   * HAProxy's runtime API socket for `shardgate-ctl lb sync` without --socket (relative to the
   * working directory); unset = the local stack's `<repo>/.stack/haproxy.sock`
   */
  SHARDGATE_HAPROXY_SOCKET: z.string().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Env = z.infer<typeof envSchema>;

export class EnvError extends Error {}

/** what the line of a missing required variable adds, where the way out is not obvious */
const REQUIRED_HINTS: Partial<Record<keyof Env, string>> = {
  SHARDGATE_DB_PASSWORD:
    'set it empty for a passwordless account, or when every shard in etcd names its own passwordEnv',
};

/**
 * Parse `source` (normally process.env). `require` lists variables that this process needs even
 * though the schema marks them optional: the API in cluster mode needs the JWT secret, the API
 * and the worker the database password (set, though it may be empty: unset, every query would
 * fail with nothing but the server's "access denied" while the instance reports ready).
 * Throws EnvError with one line naming the first bad variable.
 */
export function parseEnv(
  source: Record<string, string | undefined>,
  { require = [] }: { require?: (keyof Env)[] } = {},
): Env {
  const r = envSchema.safeParse(source);
  if (!r.success) throw firstIssue(r.error);
  checkAcrossVariables(r.data, () => true);
  for (const name of require) {
    if (r.data[name] !== undefined) continue;
    const hint = REQUIRED_HINTS[name];
    throw new EnvError(`missing required environment variable ${name}${hint ? ` (${hint})` : ''}`);
  }
  return r.data;
}

/**
 * Parse only the variables `names` of `source`: a process that reads a few of them (the CLI) is
 * not stopped by a malformed variable it never uses (the API's `PORT`, which many tools set).
 * Throws EnvError with one line naming the first bad one.
 */
export function parseEnvOf<K extends keyof Env>(
  source: Record<string, string | undefined>,
  names: readonly K[],
): Pick<Env, K> {
  const mask: Partial<Record<keyof Env, true>> = Object.fromEntries(names.map((n) => [n, true]));
  const r = envSchema.pick(mask).safeParse(source);
  if (!r.success) throw firstIssue(r.error);
  checkAcrossVariables(r.data, (name) => mask[name] === true);
  return r.data as unknown as Pick<Env, K>;
}

/**
 * What no single variable's schema can say (a refinement of the object would keep `pick` from
 * working for parseEnvOf); `parsed` says which variables were read. A secret accepted beside
 * itself would make a rotation look configured while nothing but the one secret is accepted: the
 * operator meant another value. An etcd user without a password (or the reverse) would start a
 * process that authenticates as nobody and is refused at its first etcd call, or not at all
 * while etcd's auth is off: stopped at start, naming the one missing.
 */
function checkAcrossVariables(env: Partial<Env>, parsed: (name: keyof Env) => boolean): void {
  if (parsed('SHARDGATE_ETCD_USERNAME') && parsed('SHARDGATE_ETCD_PASSWORD')) {
    const user = env.SHARDGATE_ETCD_USERNAME !== undefined;
    if (user !== (env.SHARDGATE_ETCD_PASSWORD !== undefined))
      throw new EnvError(
        user
          ? 'missing environment variable SHARDGATE_ETCD_PASSWORD: SHARDGATE_ETCD_USERNAME is set (etcd credentials are both or neither)'
          : 'missing environment variable SHARDGATE_ETCD_USERNAME: SHARDGATE_ETCD_PASSWORD is set (etcd credentials are both or neither)',
      );
  }
  if (
    env.SHARDGATE_JWT_SECRET_ACCEPTED !== undefined &&
    env.SHARDGATE_JWT_SECRET_ACCEPTED === env.SHARDGATE_JWT_SECRET
  )
    throw new EnvError(
      'invalid environment variable SHARDGATE_JWT_SECRET_ACCEPTED: must differ from SHARDGATE_JWT_SECRET (it is the other secret of a rotation; unset it when there is none)',
    );
}

function firstIssue(error: z.ZodError): EnvError {
  const issue = error.issues[0]!;
  return new EnvError(`invalid environment variable ${String(issue.path[0])}: ${issue.message}`);
}

/** the etcd user and password of createEtcdClient's `auth`, or undefined when neither is set */
export function etcdCredentials(
  env: Pick<Env, 'SHARDGATE_ETCD_USERNAME' | 'SHARDGATE_ETCD_PASSWORD'>,
): { username: string; password: string } | undefined {
  const { SHARDGATE_ETCD_USERNAME: username, SHARDGATE_ETCD_PASSWORD: password } = env;
  return username !== undefined && password !== undefined ? { username, password } : undefined;
}

/**
 * The host for a URL that reaches a listener bound to `listenHost` from this machine (what an
 * instance registers in etcd): a wildcard address means every interface, of which loopback is
 * the one surely there; an IPv6 literal gets its brackets.
 */
export function reachableHost(listenHost: string): string {
  if (listenHost === '0.0.0.0') return '127.0.0.1';
  if (/^[:0]+$/.test(listenHost)) return '[::1]';
  return listenHost.includes(':') ? `[${listenHost}]` : listenHost;
}
