/**
 * The writes of this instance that passed their last directory check (commitRefusal, right
 * before their COMMIT) and have not finished, each with the config revision it was checked
 * under. An instance reports a config revision to etcd (`instances/<id>`, which
 * `shardgate-ctl tenants move` waits on) only once the writes that revision would refuse have
 * finished (`settled`): when a move sees every instance at the revision that made its tenant
 * readonly, no write of that tenant can still commit on the old shard behind its copy.
 *
 * Before this, an outside check lost 23 and 63 registrations answered 201 in two moves: they
 * passed `requireWritable` when they arrived, waited seconds for password hashing, and committed
 * on the source shard after the move's last comparison (deleted with the source's rows, or left
 * there where nothing served them).
 *
 * A hold ends when its request has finished (the write, and the idempotency answer stored after
 * it) and its runs on the master have settled: a COMMIT its breaker gave up on
 * (`write_outcome_unknown`) is answered before its server thread was stopped, and holds until
 * then. Failure mode: a master that cannot be reached to stop it (twice the connect timeout) may
 * still apply it when it resumes; the hold ends when the stop is given up on.
 * Runtime-neutral.
 */
import type { ConfigSnapshot } from '../config/config-state.js';
import type { ConfigStore } from '../config/interface.js';
import type { TenantRef } from '../domain/data-access.js';
import { commitRefusal } from './tenant-directory.js';

interface Hold {
  tenant: TenantRef;
  revision: number;
  done: Promise<void>;
}

export class WritesInFlight {
  private readonly holds = new Set<Hold>();

  /** a write checked under config `revision` may commit now; call the result once it finished */
  hold(tenant: TenantRef, revision: number): () => void {
    let release = () => {};
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const entry: Hold = { tenant, revision, done };
    this.holds.add(entry);
    return () => {
      this.holds.delete(entry);
      release();
    };
  }

  /** writes held now */
  get size(): number {
    return this.holds.size;
  }

  /**
   * Resolves once every write held under a revision before `revision` that `refused` says the
   * new config refuses has finished (at once when there is none). Writes held later were checked
   * under `revision` or after, and are not waited for.
   */
  async settled(revision: number, refused: (tenant: TenantRef) => boolean): Promise<void> {
    const waits = [...this.holds]
      .filter((h) => h.revision < revision && refused(h.tenant))
      .map((h) => h.done);
    await Promise.all(waits);
  }
}

/**
 * How long a revision's report waits for the writes it refuses: a hold lasts one request, which
 * its breakers bound far below this. Past it (a hold that leaked: a bug), the revision is
 * reported anyway, with a warning, rather than never again.
 */
export const REPORT_WAIT_MAX_MS = 30_000;

/**
 * Calls `report(snapshot.revision)` for every config `store` applies, in order, each once the
 * writes of `writes` that snapshot refuses (commitRefusal) have finished, or after `maxWaitMs`
 * with `onOverdue` told. Returns an unsubscribe.
 */
export function reportAfterWrites(
  store: ConfigStore,
  writes: WritesInFlight,
  report: (revision: number) => void,
  onOverdue: (revision: number, held: number) => void = () => {},
  maxWaitMs = REPORT_WAIT_MAX_MS,
): () => void {
  let chain = Promise.resolve();
  return store.onChange((snapshot: ConfigSnapshot) => {
    const refused = (tenant: TenantRef) => commitRefusal(snapshot, tenant) !== undefined;
    chain = chain
      .then(async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const overdue = new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), maxWaitMs);
        });
        const settled = writes.settled(snapshot.revision, refused).then(() => false);
        const late = await Promise.race([settled, overdue]);
        clearTimeout(timer);
        if (late) onOverdue(snapshot.revision, writes.size);
      })
      .then(() => report(snapshot.revision));
  });
}
