/**
 * The zod schema of the etcd keys of CONTRACT.md §4 — the one source used by the API's live
 * config store and by `shardgate-ctl` before it writes anything. Keys are relative to the prefix.
 *
 * `parseConfigKey` never throws: an unknown key or an invalid value comes back as
 * `{ ok: false, reason }` so the caller can report it and keep the last good value.
 */

import { z } from 'zod';
import { withoutHiddenText } from '../domain/visible-text.js';
import { duplicateJsonKey } from '../http/duplicate-json-key.js';
import { ACCESS_LOG_KEY, accessLogSchema } from './access-log-mode.js';
import { ALLOWED_HOSTS_KEY, allowedHostsSchema } from './allowed-hosts.js';
import { isNotUtf8 } from './config-value-text.js';
import { CORS_ORIGINS_KEY, corsOriginsSchema } from './cors-origins.js';
import { formatHostPort } from './host-port.js';

export const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/**
 * An API instance's id (`SHARDGATE_INSTANCE_ID`, by default the hostname): wider than tenant and
 * shard ids, because a hostname may have capitals and dots. `lb/weights/<id>` takes the same, so
 * every instance that can start can be weighted; HAProxy server names allow these characters.
 */
export const INSTANCE_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
export const idSchema = z.string().regex(ID_PATTERN, 'must match ^[a-z0-9][a-z0-9-]{0,62}$');

/**
 * Whether a host with a colon is an IPv6 address (zod's check, RFC 4291 text), with an optional
 * zone (`fe80::1%eth0`). Anything else with a colon is no host a client connects to: mostly a
 * `host:port` put in `host` ("127.0.0.1:3316"), also `10.0.0.5:3316:1` or `12345::1` (a review).
 */
const ipv6Address = z.ipv6();
function isIpv6Text(host: string): boolean {
  const [address = '', zone] = host.split(/%(.*)/s);
  return ipv6Address.safeParse(address).success && (zone === undefined || /^[A-Za-z0-9._-]+$/.test(zone));
}

/**
 * A host name or an IP address as a database client takes it: no blank, no brackets (an IPv6
 * address is written bare, `::1`), no slash. `"127.0.0.1 "` and `"[::1]"` were taken and every
 * connection to them failed; shown as `127.0.0.1 :3316` and `[[::1]]:3316` (an outside check).
 */
const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[^\s[\]/]+$/, 'must be a host name or an IP address, without blanks, brackets or slashes')
  .refine((host) => !host.includes(':') || isIpv6Text(host), {
    message:
      'must not carry a port ("db1:3316"): put the port in "port"; a host with a colon must be an IPv6 address',
  });
const portSchema = z.number().int().min(1).max(65535);

export const hostPortSchema = z.strictObject({ host: hostSchema, port: portSchema });

export const replicaSchema = z.strictObject({
  host: hostSchema,
  port: portSchema,
  weight: z.number().int().min(0).max(256).default(1),
});

const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys'];

export const shardSchema = z
  .strictObject({
    master: hostPortSchema,
    replicas: z.array(replicaSchema).max(16).default([]),
    /** a schema of the product's tables: the server's own (`mysql`, …) hold none, and every request would answer 503 */
    database: z
      .string()
      .regex(/^[A-Za-z0-9_]{1,64}$/)
      .refine(
        (d) => !SYSTEM_SCHEMAS.includes(d.toLowerCase()),
        `names a schema of the server itself (${SYSTEM_SCHEMAS.join(', ')}), not one of shardgate's tables`,
      )
      .default('shardgate'),
    /**
     * names an env var holding this shard's password; the password itself never lives in etcd.
     * Only `SHARDGATE_DB_PASSWORD_<SUFFIX>`: a key that could name any variable would let whoever
     * writes etcd have the instances send, say, SHARDGATE_JWT_SECRET to a server of theirs as the
     * password of a "master".
     */
    passwordEnv: z
      .string()
      .regex(
        /^SHARDGATE_DB_PASSWORD_[A-Z0-9_]{1,100}$/,
        'must be SHARDGATE_DB_PASSWORD_<SUFFIX> (A-Z, 0-9, _)',
      )
      .optional(),
  })
  // one server per role: a replica equal to the master would be read as a replica and have its
  // lag measured against itself; a replica listed twice would get twice its read share
  .superRefine((shard, ctx) => {
    const name = (h: { host: string; port: number }) => `${h.host.toLowerCase()}:${h.port}`;
    const seen = new Set([name(shard.master)]);
    shard.replicas.forEach((r, i) => {
      if (seen.has(name(r)))
        ctx.addIssue({
          code: 'custom',
          path: ['replicas', i],
          message: `${formatHostPort(r.host, r.port)} is ${name(r) === name(shard.master) ? "the shard's master" : 'listed twice'}`,
        });
      seen.add(name(r));
    });
  });

export type ShardConfig = z.infer<typeof shardSchema>;

/** lone UTF-16 surrogates (a paired one is a single code point under the `u` flag) */
const LONE_SURROGATES = /\p{Cs}/gu;

export const TENANT_STATUSES = ['active', 'readonly', 'suspended'] as const;
export const tenantSchema = z.strictObject({
  shard: idSchema,
  status: z.enum(TENANT_STATUSES).default('active'),
  /** display name used in emails; defaults to the tenant id */
  // it goes into mail headers and every line-oriented listing: one printable line, not blank,
  // without what hides or reorders text from a reader (domain/visible-text.ts)
  name: withoutHiddenText(
    z
      .string()
      .min(1)
      .max(200)
      .regex(/^[^\p{Cc}\u2028\u2029]*$/u, 'must not contain control characters, U+2028 or U+2029')
      // a lone surrogate (`"\ud800"` in the JSON) is read as U+FFFD: utf8mb4 cannot store one,
      // so no mail of the tenant could be queued (an outside check: every registration 500);
      // refusing it would make a tenant that serves reads unroutable at the upgrade (a review)
      .overwrite((name) => name.replace(LONE_SURROGATES, '\uFFFD')),
    // read back from etcd: a name valid before the joiner check must stay so (visible-text.ts)
    { looseJoiners: 'allow' },
  )
    .regex(/\S/, 'must not be blank')
    .optional(),
});
export type TenantEntry = z.infer<typeof tenantSchema>;

/**
 * `moving/<tenantId>`: written by `shardgate-ctl tenants move` together with the `readonly` status
 * it gives an active tenant, deleted when it gives the status back (or undoes the move). While
 * both hold, a refused write says the tenant is moving and carries `Retry-After` (the readonly
 * spell of a move lasts about a second). An operator's `readonly` never has one. A separate key,
 * not a field of the tenant entry: an older instance rejects an unknown field and would keep the
 * entry's last good value (active, on the old shard) for the whole move; an unknown key it
 * rejects alone.
 */
export const moveMarkSchema = z.strictObject({
  since: z
    .string()
    .max(40)
    .regex(
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/,
      'must be an ISO 8601 date and time',
    )
    .refine((s) => !Number.isNaN(Date.parse(s)), 'must be an ISO 8601 date and time'),
});
export type MoveMark = z.infer<typeof moveMarkSchema>;

export const placementSchema = z.strictObject({
  strategy: z.enum(['least-tenants']),
  shards: z
    .array(idSchema)
    .min(1)
    .max(1000)
    // a shard listed twice is a typo (the list was meant to name another one)
    .refine((ids) => new Set(ids).size === ids.length, {
      message: 'lists a shard more than once',
    }),
});
export type Placement = z.infer<typeof placementSchema>;

export const BREAKER_KINDS = ['mysql-master', 'mysql-replica', 'redis', 'rabbitmq'] as const;
export type BreakerKind = (typeof BREAKER_KINDS)[number];
export const BREAKER_SETTINGS = [
  'failure_threshold',
  'reset_timeout_ms',
  'half_open_max_calls',
  'call_timeout_ms',
] as const;
export type BreakerSettingName = (typeof BREAKER_SETTINGS)[number];
export type BreakerSettings = Record<BreakerSettingName, number>;

/**
 * The value of a plain setting without the blanks `etcdctl put` may leave around it (a newline
 * from `echo … |`, a CRLF): spaces, tabs, CR and LF only. JavaScript's `trim` also takes a BOM,
 * a no-break or an ideographic space, which an outside check got accepted as a weight.
 */
const blanksTrimmed = z.string().transform((s) => s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, ''));

/**
 * Plain-number values: etcd stores text, so numbers are parsed strictly, as the CLI writes them:
 * decimal digits, no sign, point, exponent or leading zero (`-0` drained an instance through a
 * raw put the CLI refuses; `5.0`, `007`, `1e3` and `12abc` are refused too). One message names
 * the whole range, whichever rule or bound was crossed.
 */
const intText = (min: number, max: number) => {
  const range = `must be a whole number from ${min} to ${max}`;
  return (
    blanksTrimmed
      .pipe(
        z
          .string()
          .regex(
            /^(0|[1-9][0-9]*)$/,
            `${range}, written as plain decimal digits (no sign, point, exponent or leading zero)`,
          ),
      )
      // 309 digits and more read as Infinity, which z.number() calls "not a number": kept finite, so
      // the range is what the message names (an outside check got "received Infinity")
      .transform((text) => Math.min(Number(text), Number.MAX_VALUE))
      .pipe(z.number().int(range).min(min, range).max(max, range))
  );
};

/** each breaker setting's bounds, inclusive (the schema and the CLI's help come from here) */
export const BREAKER_SETTING_RANGES: Record<BreakerSettingName, readonly [min: number, max: number]> = {
  failure_threshold: [1, 1000],
  reset_timeout_ms: [100, 3_600_000],
  half_open_max_calls: [1, 1000],
  call_timeout_ms: [1, 600_000],
};

const settingText = (s: BreakerSettingName) => intText(...BREAKER_SETTING_RANGES[s]);
export const breakerSettingSchemas: Record<BreakerSettingName, z.ZodType<number, string>> = {
  failure_threshold: settingText('failure_threshold'),
  reset_timeout_ms: settingText('reset_timeout_ms'),
  half_open_max_calls: settingText('half_open_max_calls'),
  call_timeout_ms: settingText('call_timeout_ms'),
};

export const DEFAULT_BREAKER_SETTINGS: BreakerSettings = {
  failure_threshold: 5,
  reset_timeout_ms: 5000,
  half_open_max_calls: 2,
  call_timeout_ms: 2000,
};

/**
 * Per-kind settings `shardgate-ctl init` seeds beside `breakers/default/*` (keys like any other:
 * deleted, `breakers/default/*` applies). A cached read that waits longer than a read of the
 * database is worth nothing, so `redis` gives up after 250 ms, not 2 s: a Redis answering every
 * command in 900 ms (`CLIENT PAUSE`) kept each cached read at 0.9 s with its breaker closed.
 */
export const SEEDED_KIND_SETTINGS: Partial<Record<BreakerKind, Partial<BreakerSettings>>> = {
  redis: { call_timeout_ms: 250 },
};

/** `true` / `false`, with surrounding blanks (a newline from `echo … | etcdctl put`) ignored like numbers' */
const boolText = blanksTrimmed
  .pipe(z.enum(['true', 'false'], 'must be true or false'))
  .transform((v) => v === 'true');

export const scalarSchemas = {
  'cache/enabled': boolText,
  'cache/ttl_seconds': intText(1, 86_400),
  'cache/near_max_entries': intText(0, 1_000_000),
  'replication/max_lag_seconds': intText(1, 86_400),
  'replication/ryw_timeout_ms': intText(0, 60_000),
  // past 1,400 nothing is judged: a probe is given up at 1.5 s (shard-router.ts probeTimeoutMs)
  'replication/max_latency_ms': intText(0, 1_400),
  'mail/outbox_retention_hours': intText(0, 87_600),
  [CORS_ORIGINS_KEY]: corsOriginsSchema,
  [ALLOWED_HOSTS_KEY]: allowedHostsSchema,
  [ACCESS_LOG_KEY]: accessLogSchema,
} as const;
export type ScalarKey = keyof typeof scalarSchemas;
/**
 * what a plain setting parses to: a number, a boolean, a list (`cors/allowed_origins`,
 * `http/allowed_hosts`) or a word (`http/access_log`)
 */
export type ScalarValue = number | boolean | string | readonly string[];

export const weightSchema = intText(0, 256);

/**
 * The cache generation (read-cache.ts): a cache entry filled under another value is not served.
 * Written by the API instances themselves when a cache invalidation could not reach Redis, and by
 * an operator who wants every cached entry gone (any other number). Not a managed setting: `config
 * export` leaves it out and its changes do not move the config revision (config-state.ts).
 */
export const CACHE_EPOCH_KEY = 'runtime/cache_epoch';
const cacheEpochSchema = intText(0, Number.MAX_SAFE_INTEGER);

/**
 * One tenant's cache generation, beside the global one: a cache entry of the tenant filled under
 * another value is not served (read-cache.ts). Written by the API instances after a write of the
 * tenant whose outcome is unknown (`write_outcome_unknown`), so one tenant's uncertain writes
 * retire its own entries, not every tenant's; and by an operator who wants one tenant's cache
 * emptied. Absent reads as 0. Runtime like `runtime/cache_epoch`; `tenants remove` deletes it.
 */
export const TENANT_CACHE_EPOCH_PREFIX = 'runtime/tenant_cache_epoch/';
export const tenantCacheEpochKey = (tenantId: string) => `${TENANT_CACHE_EPOCH_PREFIX}${tenantId}`;

/** the global cache epoch or a tenant's: moved by the instances, not settings (config-state.ts) */
export const isCacheEpochKey = (key: string) =>
  key === CACHE_EPOCH_KEY || key.startsWith(TENANT_CACHE_EPOCH_PREFIX);

/**
 * A barrier in the config's order: `shardgate-ctl tenants delete-rows` puts it once the tenant is
 * out of the directory, then waits for every registered instance to report a config revision at
 * least the barrier's. A put (unlike the delete of a tenant entry) stays in the prefix, so an
 * instance that reads the whole config afresh (started later, or a watch cancelled) reports that
 * revision too, and a watching one reports it only once its writes begun under the older config
 * have finished (writes-in-flight.ts). Moves the config revision; changes nothing else. Not a
 * managed setting: `config export` leaves it out.
 */
export const BARRIER_KEY = 'runtime/barrier';
const barrierSchema = z
  .object({
    /** the command that put it, e.g. `tenants delete-rows t1 --shard shard-1` */
    by: z.string().min(1).max(300),
    /** ISO time */
    at: z.string().min(1).max(40),
  })
  .strict();
export type Barrier = z.infer<typeof barrierSchema>;

/**
 * Where an instance answers: `http(s)://host:port`, nothing more. `shardgate-ctl status` and
 * `shards list` fetch `<url>/health/config` of every registered instance: a value any etcd writer
 * can put must not make the operator's machine fetch a path, a query, another scheme or send
 * credentials (an outside review).
 */
const instanceUrlSchema = z
  .string()
  .max(2048)
  .refine((value) => {
    let url: URL;
    try {
      url = new URL(value);
    } catch {
      return false;
    }
    return (
      (url.protocol === 'http:' || url.protocol === 'https:') &&
      url.username === '' &&
      url.password === '' &&
      url.pathname === '/' &&
      !value.endsWith('/') &&
      url.search === '' &&
      url.hash === '' &&
      !value.includes('?') &&
      !value.includes('#')
    );
  }, 'must be http(s)://host:port, without a path, query or credentials');

export const instanceSchema = z.object({
  url: instanceUrlSchema,
  configRevision: z.number().int().min(0),
  startedAt: z.string(),
  /** the build it runs, `<version>+<commit>` (src/entry/build-info.ts); absent from older builds */
  build: z.string().max(100).optional(),
  /** tenants whose directory entry the instance rejects (instance-registration.ts) */
  rejectedTenants: z.array(z.string().max(300)).max(100).optional(),
  rejectedTenantsTruncated: z.boolean().optional(),
});
export type InstanceInfo = z.infer<typeof instanceSchema>;

/** Defaults that `shardgate-ctl init` seeds and that apply while a key is absent. */
export const DEFAULT_SCALARS: Record<ScalarKey, string> = {
  'cache/enabled': 'true',
  'cache/ttl_seconds': '60',
  'cache/near_max_entries': '0',
  'replication/max_lag_seconds': '5',
  'replication/ryw_timeout_ms': '200',
  // a replica whose probe takes longer (and over 3× its master's) is excluded: shard-router.ts
  'replication/max_latency_ms': '150',
  'mail/outbox_retention_hours': '168',
  // no origin: browsers on other sites are refused, as before the key existed
  [CORS_ORIGINS_KEY]: '',
  // every host: a list is for a deployment whose names are known (DNS rebinding, allowed-hosts.ts)
  [ALLOWED_HOSTS_KEY]: '',
  // no line per request: it costs CPU on the hot path (access-log-mode.ts)
  [ACCESS_LOG_KEY]: 'off',
};

export type ParsedKey =
  | { type: 'shard'; id: string; value: ShardConfig }
  | { type: 'tenant'; id: string; value: TenantEntry }
  | { type: 'placement'; value: Placement }
  | { type: 'breaker'; scope: 'default' | BreakerKind; setting: BreakerSettingName; value: number }
  | { type: 'scalar'; key: ScalarKey; value: ScalarValue }
  | { type: 'weight'; id: string; value: number }
  | { type: 'instance'; id: string; value: InstanceInfo }
  | { type: 'cacheEpoch'; value: number }
  | { type: 'tenantCacheEpoch'; id: string; value: number }
  | { type: 'barrier'; value: Barrier }
  | { type: 'moving'; id: string; value: MoveMark };

export type ParseResult = { ok: true; parsed: ParsedKey } | { ok: false; reason: string };

/**
 * a config value's length, in UTF-16 units, beyond which it is rejected unread: four times the
 * longest valid one (a placement of 1,000 shard ids of 63 characters is 66,039; a review)
 */
export const MAX_VALUE_CHARS = 262_144;
/** how deep a JSON value may nest (the deepest valid one, a shard's replica, is 3) */
const MAX_JSON_DEPTH = 16;
/** a rejection's reason is cut here: 6,000 unknown fields were all listed, in every reader's report */
const MAX_REASON_CHARS = 500;

/** each issue once: a value past a bound and past the safe integers breaks two checks of one message */
function describe(error: z.ZodError): string {
  const lines = error.issues.map((i) =>
    i.path.length > 0 ? `${i.path.join('.')}: ${i.message}` : i.message,
  );
  return [...new Set(lines)].join('; ');
}

/** a reason as every reader reports it: at most MAX_REASON_CHARS code points */
function cut(result: ParseResult): ParseResult {
  if (result.ok || result.reason.length <= MAX_REASON_CHARS) return result;
  return { ok: false, reason: `${[...result.reason].slice(0, MAX_REASON_CHARS - 1).join('')}…` };
}

/**
 * How deep `text` nests its arrays and objects, read in one pass (outside strings), up to `max` + 1:
 * JSON.parse and the duplicate-key scan of a value nested 100,000 deep took tens of milliseconds
 * of the event loop per 100 KB, where one pass over its characters takes well under one.
 */
function nestingDepth(text: string, max: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: the next character is escaped
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > max) return deepest;
      }
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

function parseJson(value: string): { ok: true; data: unknown } | { ok: false; reason: string } {
  if (nestingDepth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH)
    return { ok: false, reason: `nests deeper than ${MAX_JSON_DEPTH} levels of arrays and objects` };
  try {
    const data: unknown = JSON.parse(value);
    if (data === null || typeof data !== 'object' || Array.isArray(data)) {
      return { ok: false, reason: 'must be a JSON object' };
    }
    // JSON.parse keeps the last of a name given twice: `{"status":"active","status":"suspended"}`
    // was taken as suspended where a reader of the first saw active (an outside check); the API
    // refuses such a body, and `config apply` such a file
    const twice = duplicateJsonKey(value);
    if (twice !== undefined) return { ok: false, reason: `${twice}: given more than once` };
    return { ok: true, data };
  } catch {
    return { ok: false, reason: 'must be valid JSON' };
  }
}

function withSchema<T>(
  schema: z.ZodType<T, unknown>,
  input: unknown,
  build: (v: T) => ParsedKey,
): ParseResult {
  const r = schema.safeParse(input);
  return r.success ? { ok: true, parsed: build(r.data) } : { ok: false, reason: describe(r.error) };
}

function jsonKey<T>(schema: z.ZodType<T, unknown>, value: string, build: (v: T) => ParsedKey): ParseResult {
  const j = parseJson(value);
  return j.ok ? withSchema(schema, j.data, build) : j;
}

function idKey(id: string, then: () => ParseResult): ParseResult {
  return ID_PATTERN.test(id) ? then() : { ok: false, reason: `id "${id}" must match ${ID_PATTERN.source}` };
}

/**
 * Parse one key (relative to the prefix) and its value. Per-key checks only; references between
 * keys (a tenant naming an unknown shard) are checked by `validateReferences`.
 */
export function parseConfigKey(key: string, value: string): ParseResult {
  // every reason cut once, whatever echoes the value or the key (a duplicate name, an id, a
  // breaker setting: a review measured reasons of 100,000 characters)
  return cut(parseUncut(key, value));
}

function parseUncut(key: string, value: string): ParseResult {
  // before any parse: a 1.4 MB value nested 700,000 deep took 2.2 s of both instances' event loop
  // to reject (JSON.parse and the duplicate-key scan), past the 2 s of a put taking effect, and
  // held every request meanwhile (an outside check); no valid value comes near the limit
  if (value.length > MAX_VALUE_CHARS)
    return {
      ok: false,
      reason: `is ${value.length.toLocaleString('en-US')} characters long; a value holds at most ${MAX_VALUE_CHARS.toLocaleString('en-US')}`,
    };
  // etcd holds bytes; every reader decodes them with configValueText, which marks bytes that are
  // not UTF-8 (CONTRACT.md §4) with a lone surrogate. A valid value may well spell U+FFFD.
  if (isNotUtf8(value)) return { ok: false, reason: 'must be valid UTF-8 (holds bytes that are not)' };
  const parts = key.split('/');
  const [head, a, b] = parts;
  if (head === 'shards' && parts.length === 2 && a) {
    return idKey(a, () => jsonKey(shardSchema, value, (v) => ({ type: 'shard', id: a, value: v })));
  }
  if (head === 'tenants' && parts.length === 2 && a) {
    return idKey(a, () => jsonKey(tenantSchema, value, (v) => ({ type: 'tenant', id: a, value: v })));
  }
  if (key === 'placement') {
    return jsonKey(placementSchema, value, (v) => ({ type: 'placement', value: v }));
  }
  if (head === 'breakers' && parts.length === 3 && a && b) {
    const scope = a === 'default' ? 'default' : BREAKER_KINDS.find((k) => k === a);
    if (!scope)
      return { ok: false, reason: `unknown breaker kind "${a}" (default, ${BREAKER_KINDS.join(', ')})` };
    const setting = BREAKER_SETTINGS.find((s) => s === b);
    if (!setting)
      return { ok: false, reason: `unknown breaker setting "${b}" (${BREAKER_SETTINGS.join(', ')})` };
    return withSchema(breakerSettingSchemas[setting], value, (v) => ({
      type: 'breaker',
      scope,
      setting,
      value: v,
    }));
  }
  if (key in scalarSchemas) {
    const k = key as ScalarKey;
    return withSchema(scalarSchemas[k] as z.ZodType<ScalarValue, unknown>, value, (v) => ({
      type: 'scalar',
      key: k,
      value: v,
    }));
  }
  if (head === 'lb' && a === 'weights' && parts.length === 3 && b) {
    if (!INSTANCE_ID_PATTERN.test(b))
      return { ok: false, reason: `instance id "${b}" must match ${INSTANCE_ID_PATTERN.source}` };
    return withSchema(weightSchema, value, (v) => ({ type: 'weight', id: b, value: v }));
  }
  if (key === CACHE_EPOCH_KEY) {
    return withSchema(cacheEpochSchema, value, (v) => ({ type: 'cacheEpoch', value: v }));
  }
  if (key.startsWith(TENANT_CACHE_EPOCH_PREFIX) && parts.length === 3 && b) {
    return idKey(b, () =>
      withSchema(cacheEpochSchema, value, (v) => ({ type: 'tenantCacheEpoch', id: b, value: v })),
    );
  }
  if (key === BARRIER_KEY) {
    return jsonKey(barrierSchema, value, (v) => ({ type: 'barrier', value: v }));
  }
  if (head === 'instances' && parts.length === 2 && a) {
    return jsonKey(instanceSchema, value, (v) => ({ type: 'instance', id: a, value: v }));
  }
  if (head === 'moving' && parts.length === 2 && a) {
    return idKey(a, () => jsonKey(moveMarkSchema, value, (v) => ({ type: 'moving', id: a, value: v })));
  }
  return { ok: false, reason: 'unknown key' };
}
