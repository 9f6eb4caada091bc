/**
 * Idempotency keys (the `Idempotency-Key` request header of IETF draft-ietf-httpapi-idempotency-
 * key-header): a client that sends one with a write and retries with the same key after a lost
 * answer (a timeout, a 503, a dropped connection) gets the write done once.
 *
 * A key is claimed by a row written in the SAME transaction as the write it guards, before the
 * write's own statements: the row exists exactly when the write committed. A second request
 * with the key either finds the row (and is answered from it) or, when it raced the first,
 * waits on the row's lock inside its own transaction and then finds the key taken
 * (IdempotencyKeyTaken), rolling back whatever it did. The answer is stored on the row right
 * after the commit; a row without one is a write whose answer was lost (or is just being sent).
 */
export const IDEMPOTENCY_HEADER = 'Idempotency-Key';
/**
 * visible ASCII, as the draft's sf-string allows it; 200 at most, so `<member id>/<key>` fits the
 * column (255)
 */
export const IDEMPOTENCY_KEY_PATTERN = /^[\x21-\x7e]{1,200}$/;
/** how long a key is kept: a retry later than this is a new request */
export const IDEMPOTENCY_RETENTION_MS = 24 * 3600 * 1000;

/**
 * Rows of keys created before this, seen at `at`, are expired: a request with such a key is a new
 * request, whether or not the row was purged yet (purging is lazy: a quiet tenant kept keys for
 * days, and a key reused after a day answered 422 or replayed a day-old answer).
 */
export function expiredBefore(at: Date): Date {
  return new Date(at.getTime() - IDEMPOTENCY_RETENTION_MS);
}

/** The answer of the write a key guarded, as it was sent. */
export interface StoredResponse {
  status: number;
  body: string;
  /** the headers worth giving back (Content-Type, Location, X-Consistency-Token) */
  headers: Record<string, string>;
}

export interface IdempotencyRecord {
  key: string;
  /** sha-256 of who sent what (member, method, path, body): a key reused for another request differs */
  fingerprint: string;
  createdAt: Date;
  /** absent until the answer was stored after the commit */
  response?: StoredResponse;
  /** the process that claimed the key (routes/idempotency.ts claimantOf); absent on older rows */
  claimedBy?: string;
  /**
   * the store's clock when the row was read (SQL: the server's `NOW(3)` in the same SELECT), the
   * clock `createdAt` is of (the write's `tx.now()`): the row's age without this instance's clock
   */
  readAt?: Date;
}

/** Thrown by `IdempotencyRepo.claim` when a committed row holds the key already. */
export class IdempotencyKeyTaken extends Error {
  constructor(readonly key: string) {
    super('idempotency key taken');
    this.name = 'IdempotencyKeyTaken';
  }
}

/**
 * Thrown by `IdempotencyRepo.claim` when the claim met a concurrent claim of the key in the
 * database (a deadlock or a lock wait between their inserts: InnoDB's insert-intention locks on
 * one key, after the holder rolled back). `cause` is the driver's error, so the adapter still
 * retries the write as a transaction conflict; a conflict that persists, its last attempt's
 * claim failing so, is a request with the same key in progress, not an unavailable master
 * (routes/idempotency.ts).
 */
export class IdempotencyKeyContended extends Error {
  constructor(
    readonly key: string,
    options: { cause: unknown },
  ) {
    super('idempotency key contended', options);
    this.name = 'IdempotencyKeyContended';
  }
}

/** the HKDF label of the key of requests' fingerprints (Services.requestFingerprints) */
export const REQUEST_FINGERPRINT_LABEL = 'shardgate/idempotency-fingerprint/v1';
