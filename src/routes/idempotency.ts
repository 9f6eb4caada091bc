/**
 * `Idempotency-Key` on the /v1 writes (src/domain/idempotency.ts has the storage contract). With
 * a key, a write is done once per (tenant, member, key) however often it is sent:
 * - the first request runs as usual, its key claimed in its own transaction; a 2xx answer is
 *   stored on the key's row right after the commit (status, body, Content-Type, Location,
 *   X-Consistency-Token) and the answer goes out;
 * - keys are per member (`<member id>/<key>`; for a registration, `-` and a digest of the
 *   address it registers): another member's key, or another registration's, is another key;
 * - a repeat with the same key and the same request (method, path and body with its JSON keys in
 *   any order, by a keyed HMAC-SHA256: the body may hold a password) gets that answer again, with `Idempotent-Replayed: true`, and changes
 *   nothing; its token is checked as any request's (a revoked one gets 401, not the answer);
 * - a repeat while the first is still running: 409 `idempotency_key_in_progress` with
 *   Retry-After 1 (also when it raced the first into the database: its own work rolls back);
 * - the key with another request: 422 `idempotency_key_reused`;
 * - a registration's repeat (no token: its body holds a password) is a password check of its
 *   address first: the login throttle admits it or answers 429, and a body other than the first
 *   one's counts as a failed login;
 * - a key whose write committed but whose answer was never stored (the instance or the master
 *   went away in between): 409 `idempotency_key_answer_lost` — the write is done, read the
 *   resource instead of sending it again. That is once the key is older than IN_PROGRESS_MS, or
 *   at once when the process that claimed it no longer runs (claimantGone: its registration in
 *   etcd is gone or names a later start). Before, a borrow committed on an instance SIGKILLed
 *   right after was answered "in progress, retry after a second" for 10 s, to a client whose
 *   retries ended sooner (an outside check).
 * A write that failed (4xx, 503) stores nothing: its transaction, the key's row with it, rolled
 * back, so the same key may be sent again. Keys are kept a day (IDEMPOTENCY_RETENTION_MS):
 * every so often a stored answer also deletes up to PURGE_BATCH expired keys of the tenant.
 * Without the header nothing here runs beyond one header lookup.
 *
 * Key rotation: fingerprints and a registration's digest are made with the current secret's key
 * (`requestFingerprints`); a key stored under the accepted secret's (`acceptedRequestFingerprints`,
 * SHARDGATE_JWT_SECRET_ACCEPTED) matches as well: its fingerprint is compared with the retry's
 * under that key, and a registration's key is looked for under the current digest, then under
 * that one. Without it, a retry that met an instance on the other side of a secret change was told
 * 422 "another request" (a client that obeyed wrote twice) or, for a registration, 409
 * `email_taken`.
 */
import type { MiddlewareHandler } from 'hono';
import type { AppEnv, Services } from '../app-env.js';
import { type LoginAttempt, loginAccount } from '../auth/login-throttle.js';
import type { DerivedMac } from '../crypto/derived-mac.js';
import type {
  DataAccess,
  TenantRef,
  WriteOptions,
  WriteOutcome,
  WriteTransaction,
} from '../domain/data-access.js';
import {
  IDEMPOTENCY_HEADER,
  IDEMPOTENCY_KEY_PATTERN,
  IdempotencyKeyContended,
  IdempotencyKeyTaken,
  type IdempotencyRecord,
} from '../domain/idempotency.js';
import { currentMember } from '../domain/member-access.js';
import { normaliseEmail } from '../domain/members.js';
import type { TenantRepos } from '../domain/repositories.js';
import { ok, type Result } from '../domain/result.js';
import { ProblemError } from '../http/problem.js';
import { REPEATED_HEADER } from '../http/repeated-header.js';
import { requestHeader } from '../http/request-header.js';
import { setHeader, textBody } from '../http/response-headers.js';
import { fieldProblem } from '../http/validation-problem.js';
import { ConflictPersistedError, DependencyUnavailableError } from '../resilience/dependency-unavailable.js';
import { failureProblem } from './respond.js';
import { tooManyLoginAttempts } from './too-many-login-attempts.js';

/** a key row without an answer younger than this is a write still being answered */
const IN_PROGRESS_MS = 10_000;
/** the headers of an answer that are stored and given back */
const KEPT_HEADERS = ['Content-Type', 'Location', 'X-Consistency-Token'];
const PURGE_SHARE = 0.05;
const PURGE_BATCH = 100;

const inProgress = () =>
  new ProblemError({
    status: 409,
    code: 'idempotency_key_in_progress',
    title: 'Request with this key in progress',
    detail: `a request with this ${IDEMPOTENCY_HEADER} is still being processed; retry after a second`,
    headers: { 'Retry-After': '1' },
  });

/**
 * The tenant's DataAccess for one request with a key: its first write claims the key in the
 * same transaction. Records whether that write committed, for the answer to be stored.
 */
class KeyedWrites implements DataAccess {
  committed = false;
  private claimed = false;
  /** the latest attempt's claim met a concurrent claim of the key (IdempotencyKeyContended) */
  private claimContended = false;

  constructor(
    private readonly inner: DataAccess,
    private readonly key: string,
    private readonly fingerprint: string,
    private readonly claimant: string,
  ) {}

  async write<T>(
    tenant: TenantRef,
    fn: (repos: TenantRepos, tx: WriteTransaction) => Promise<Result<T>>,
    options?: WriteOptions,
  ): Promise<WriteOutcome<T>> {
    if (this.claimed) return this.inner.write(tenant, fn, options);
    this.claimed = true;
    try {
      const out = await this.inner.write(
        tenant,
        async (repos, tx) => {
          // each attempt of the write (a conflict is retried) claims again
          try {
            // at the database server's time (tx.now), which a repeat measures the row's age by
            await repos.idempotency.claim(this.key, this.fingerprint, await tx.now(), this.claimant);
            this.claimContended = false;
          } catch (error) {
            this.claimContended = error instanceof IdempotencyKeyContended;
            throw error;
          }
          return fn(repos, tx);
        },
        options,
      );
      this.committed = out.result.ok;
      return out;
    } catch (error) {
      // another request with this key committed while this one waited for it, or their claims
      // kept meeting in the database until the adapter's retries ran out (its last attempt's
      // claim was the one that failed): a 503 "transaction conflict persisted" before, with the
      // master healthy (8 of 300 same-key retries of a borrow with no copy free, an outside check)
      if (error instanceof IdempotencyKeyTaken) throw inProgress();
      // (only the conflict's own error: an attempt that failed before its claim ran — no free
      // connection, a breaker that opened — leaves the flag of the one before, and is the master's)
      if (this.claimContended && error instanceof ConflictPersistedError) throw inProgress();
      throw error;
    }
  }

  admitWrite(tenant: TenantRef): void {
    this.inner.admitWrite(tenant);
  }

  read: DataAccess['read'] = (tenant, options, fn) => this.inner.read(tenant, options, fn);
}

/**
 * JSON with its object keys sorted (the same request however a client orders them); else as
 * sent. No body is `{}`: a route without a body takes either (`noBody`), and a body route refuses
 * an empty one before a key is claimed.
 */
function canonicalBody(text: string): string {
  if (text.trim() === '') return '{}';
  const sorted = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sorted)
      : v !== null && typeof v === 'object'
        ? Object.fromEntries(
            Object.keys(v)
              .sort()
              .map((k) => [k, sorted((v as Record<string, unknown>)[k])]),
          )
        : v;
  try {
    return JSON.stringify(sorted(JSON.parse(text)));
  } catch {
    return text;
  }
}

/**
 * The scope of a key sent without a token (a registration): `-` and a keyed digest of the address
 * it registers (22 hex characters; the key column holds `-`, 22, `/` and a 200-character key).
 * Before, every registration of a tenant shared `-`: a client with predictable keys got others'
 * sign-ups answered 422 `idempotency_key_reused` or 409 for a day, and the 422 told a stranger
 * that the key had been used (an outside check). A retry of one registration has the same
 * address, so it still finds its key. A body without an address (no route sends one here) keeps
 * `-`. `email` is the address, for the login throttle of a repeat (see `idempotentWrite`).
 */
async function anonymousScope(
  mac: DerivedMac,
  text: string,
  accepted: DerivedMac | undefined,
): Promise<{ scope: string; acceptedScope?: string; email?: string }> {
  let email: unknown;
  try {
    email = (JSON.parse(text) as { email?: unknown } | null)?.email;
  } catch {
    return { scope: '-' };
  }
  if (typeof email !== 'string') return { scope: '-' };
  const scopeOf = async (m: DerivedMac) =>
    `-${(await fingerprintOf(m, `email\n${normaliseEmail(email)}`)).slice(0, 22)}`;
  return { scope: await scopeOf(mac), acceptedScope: accepted && (await scopeOf(accepted)), email };
}

/**
 * The stored fingerprint of a request: HMAC-SHA256 under a key derived from the server secret,
 * in hex (64 characters). Not a plain SHA-256: the body it covers may hold a password.
 */
async function fingerprintOf(mac: DerivedMac, text: string): Promise<string> {
  const digest = await mac.sign(new TextEncoder().encode(text));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Whether a stored fingerprint is the one of this request (`fingerprint`, made under the current
 * key): else the one made under the accepted secret's key (a rotation), each also in the form of
 * a key stored before no body was taken for `{}` (no body fingerprinted as the empty string).
 */
async function sameRequest(
  stored: string,
  fingerprint: string,
  request: string,
  body: string,
  services: Pick<Services, 'requestFingerprints' | 'acceptedRequestFingerprints'>,
): Promise<boolean> {
  if (stored === fingerprint) return true;
  const accepted = services.acceptedRequestFingerprints;
  if (accepted && stored === (await fingerprintOf(accepted, request + body))) return true;
  if (body !== '{}') return false;
  for (const mac of accepted ? [services.requestFingerprints, accepted] : [services.requestFingerprints])
    if (stored === (await fingerprintOf(mac, request))) return true;
  return false;
}

/** the name a claim of this process leaves on the key's row: `<instance id> <its start time>` */
export const claimantOf = (services: Pick<Services, 'instanceId' | 'startedAt'>): string =>
  `${services.instanceId} ${services.startedAt}`;

/** how long after its start an instance may still be unregistered (it registers once ready) */
const REGISTRATION_GRACE_MS = 10_000;

/**
 * Whether the process that claimed a key (`claimedBy`, from claimantOf) is known to run no more:
 * a later start of the same instance id runs (this process, or the one registered at
 * `instances/<id>`), or the id has no registration (its 5 s lease ran out) though the claim was
 * made over REGISTRATION_GRACE_MS after its claimant started (a new instance registers just
 * after it is ready).
 * Not known, so false: a row from before claims were named; a name that does not parse; a
 * registration of an earlier start (two processes with one instance id: ids must be unique, as
 * they are HAProxy's server names too); an instance whose config is not connected to etcd, or that
 * does not see its own registration (none in use, as on a runtime that does not register), since
 * the others' may be stale or missing too. A claimant alive but briefly unregistered (its lease
 * lost and renewed, with etcd answering the others) is taken for gone: its write did commit, so
 * "answer lost" is true, only the stored answer is not given back.
 */
export function claimantGone(
  claimedBy: string | undefined,
  services: Pick<Services, 'instanceId' | 'startedAt' | 'config'>,
  /**
   * when the claim was made (the row's `created_at`: the database server's clock, compared with
   * the claimant's start time by its own clock, so a claimant whose clock is behind by more than
   * the grace looks gone a little sooner while unregistered)
   */
  claimedAt: Date,
): boolean {
  if (claimedBy === undefined) return false;
  const cut = claimedBy.lastIndexOf(' ');
  if (cut <= 0) return false;
  const id = claimedBy.slice(0, cut);
  const startedAt = claimedBy.slice(cut + 1);
  // toISOString() times: their text order is their time order
  if (id === services.instanceId) return services.startedAt > startedAt;
  if (!services.config.status().connected) return false;
  const { instances } = services.config.current();
  if (instances.get(services.instanceId)?.startedAt !== services.startedAt) return false;
  const registered = instances.get(id);
  if (registered) return registered.startedAt > startedAt;
  const started = Date.parse(startedAt);
  return Number.isFinite(started) && claimedAt.getTime() - started > REGISTRATION_GRACE_MS;
}

/** The answer to a request whose key has a row already. */
function answerFrom(c: Parameters<MiddlewareHandler<AppEnv>>[0], record: IdempotencyRecord, same: boolean) {
  if (!same) {
    throw new ProblemError({
      status: 422,
      code: 'idempotency_key_reused',
      title: 'Idempotency key reused',
      detail: `this ${IDEMPOTENCY_HEADER} was sent with another request (another route or body); use a new key for a new request`,
      extra: { errors: [{ field: `header.${IDEMPOTENCY_HEADER}`, message: 'used for another request' }] },
    });
  }
  const { response } = record;
  if (!response) {
    // the row's age by one clock, the store's (the server's, with the row), not this instance's:
    // a row claimed on an instance 300 s ahead was "in progress" for 310 s
    const young = (record.readAt ?? new Date()).getTime() - record.createdAt.getTime() < IN_PROGRESS_MS;
    if (young && !claimantGone(record.claimedBy, c.get('services'), record.createdAt)) throw inProgress();
    throw new ProblemError({
      status: 409,
      code: 'idempotency_key_answer_lost',
      title: 'Request with this key done, answer lost',
      detail: `the write with this ${IDEMPOTENCY_HEADER} was done at ${record.createdAt.toISOString()}, but its answer was not kept; read the resource instead of sending the write again`,
    });
  }
  for (const [name, value] of Object.entries(response.headers)) {
    if (name !== 'Content-Type') setHeader(c, name, value);
  }
  setHeader(c, 'Idempotent-Replayed', 'true');
  return response.status === 204
    ? textBody(c, null, 204)
    : textBody(c, response.body, response.status as 200, response.headers['Content-Type']);
}

/** the login throttle's admission of a registration's repeat (429 when it refuses) */
async function admitRepeat(
  c: Parameters<MiddlewareHandler<AppEnv>>[0],
  email: string,
): Promise<LoginAttempt> {
  const admission = await c.get('services').loginThrottle.admit(loginAccount(c.get('tenant').id, email));
  if (!admission.admitted) throw tooManyLoginAttempts(admission);
  return admission.attempt;
}

/** the text of an RFC 8941 sf-string (`"a\\"b"` is `a"b`), undefined when `raw` is none */
export function sfString(raw: string): string | undefined {
  if (!/^"(?:[^"\\]|\\["\\])*"$/.test(raw)) return undefined;
  return raw.slice(1, -1).replace(/\\(["\\])/g, '$1');
}

/** After the route's own checks, before its handler: see the top of this file. */
export const idempotentWrite: MiddlewareHandler<AppEnv> = async (c, next) => {
  const raw = requestHeader(c, IDEMPOTENCY_HEADER);
  if (raw === undefined) return next();
  // a key holds no space: `a, b` is the header sent twice (joined by the runtime) or a list.
  // Before, that read "1 to 200 visible ASCII characters" (an outside check)
  if (raw.includes(', ')) throw fieldProblem(`header.${IDEMPOTENCY_HEADER}`, REPEATED_HEADER);
  // the draft's form is a quoted sf-string ("8e03…", RFC 8941 §3.3.3: `\"` and `\\` inside
  // stand for `"` and `\`); a bare token is taken as the same key. One that opens a quote must
  // close it: `"abc` is a client's bug, not the key `"abc`
  const quoted = raw.startsWith('"');
  const given = quoted ? sfString(raw) : raw;
  if (given === undefined || !IDEMPOTENCY_KEY_PATTERN.test(given)) {
    const message =
      given === undefined
        ? 'a quoted key must end with its closing quote, and a quote or backslash inside it must be escaped with a backslash'
        : '1 to 200 visible ASCII characters';
    throw fieldProblem(`header.${IDEMPOTENCY_HEADER}`, message);
  }
  const services = c.get('services');
  const tenant = c.get('tenant');
  const principal = c.get('principal');
  const text = await c.req.text();
  // keys are per member: another member's key is another key
  const accepted = services.acceptedRequestFingerprints;
  const anonymous = principal
    ? undefined
    : await anonymousScope(services.requestFingerprints, text, accepted);
  const key = `${principal?.memberId ?? anonymous?.scope}/${given}`;
  const request = `${c.req.method}\n${c.req.path}\n`;
  const body = canonicalBody(text);
  const fingerprint = await fingerprintOf(services.requestFingerprints, request + body);
  // a registration's key filed by an instance on the other side of a secret change is under the
  // accepted secret's digest of its address: looked for there when not found under this one's.
  // (Two first attempts racing on both sides of the change claim two keys; the address's
  // uniqueness then answers the later one 409 `email_taken`, still one member.)
  const acceptedKey = anonymous?.acceptedScope ? `${anonymous.acceptedScope}/${given}` : undefined;
  const find = (keys: string[]) =>
    services.data.read(tenant, { from: 'master' }, async (repos) => {
      for (const k of keys) {
        const record = await repos.idempotency.find(k);
        if (record) return record;
      }
      return undefined;
    });
  /** the answer to a repeat of the request `record` holds */
  const repeat = async (record: IdempotencyRecord) => {
    // a replay is still a request of this token: one revoked since (password changed) gets 401
    if (principal) {
      const member = await currentMember(services.data, tenant, principal);
      if (!member.value.ok) throw failureProblem(member.value);
    }
    // A registration's body holds its password, so a repeat's answer (the stored 201, or 422)
    // tells whether a guess is the password it was first sent with: an outside check found it in
    // 101 guesses in 0.4 s, past argon2id and the login throttle. So a repeat of a key sent
    // without a token is a password check of that address: admitted by the login throttle, and a
    // differing body counts as a failed login (an equal one counts nothing).
    const attempt = anonymous?.email === undefined ? undefined : await admitRepeat(c, anonymous.email);
    // a key stored before no body was taken for `{}` fingerprinted no body as the empty string
    const same = await sameRequest(record.fingerprint, fingerprint, request, body, services);
    await attempt?.settle(same ? 'undecided' : 'failed');
    return answerFrom(c, record, same);
  };
  const found = await find(acceptedKey ? [key, acceptedKey] : [key]);
  if (found.value) return repeat(found.value);

  const writes = new KeyedWrites(services.data, key, fingerprint, claimantOf(services));
  c.set('services', { ...services, data: writes });
  await next();
  const res = c.res;
  // A registration retried on an instance of the other secret while its first attempt was in
  // flight there: that attempt's key (under the accepted digest) was not committed when looked
  // for, so this one claimed its own, and the address, taken once the first committed, refused
  // it 409. It is that first request's repeat: answered from its key (in progress, or replayed),
  // not "email taken" (a review).
  if (!writes.committed && res.status === 409 && acceptedKey) {
    const first = await find([acceptedKey]);
    if (first.value) {
      c.res = undefined;
      c.res = await repeat(first.value);
      return;
    }
  }
  if (!writes.committed || res.status >= 300) return;
  const headers: Record<string, string> = {};
  for (const name of KEPT_HEADERS) {
    const value = res.headers.get(name);
    if (value !== null) headers[name] = value;
  }
  const response = { status: res.status, body: res.status === 204 ? '' : await res.clone().text(), headers };
  const store = () =>
    services.data.write(tenant, async (repos) => {
      await repos.idempotency.complete(key, response);
      if (Math.random() < PURGE_SHARE) await repos.idempotency.purge(PURGE_BATCH);
      return ok(undefined);
    });
  try {
    // storing the answer again is harmless (the same row, the same answer): one more try when
    // the master's connection was lost (an outside check that killed connections every 2 s left
    // 2 keys whose repeat was told "still in progress" after their 201 and 200)
    await store().catch((error: unknown) => {
      if (!(error instanceof DependencyUnavailableError)) throw error;
      return store();
    });
  } catch (error) {
    // the write stands; a repeat of this key is told its answer was lost
    services.logger.warn({ err: String(error), tenant: tenant.id }, 'idempotency answer not stored');
  }
};
