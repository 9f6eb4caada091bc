/**
 * The state of every InnoDB transaction of a node, for the kills of abandoned writes
 * (mysql-node-set.ts): whether a write was waiting on a row lock (`LOCK WAIT`) or running.
 *
 * Read from `SHOW ENGINE INNODB STATUS`, which InnoDB writes at each call, not from
 * information_schema.INNODB_TRX: InnoDB serves that from a snapshot it refreshes only once 100 ms
 * passed without a read of it, server-wide. One read per kill, under a stream of abandoned writes
 * (15 a second in an outside check), kept it from ever refreshing: a transaction begun since was
 * not listed, and writes waiting on their own tenant's row lock were taken for a stuck master,
 * whose breaker then opened for every tenant of the shard. Checked on MariaDB 10.11: read every
 * 50 ms, a transaction in LOCK WAIT for 1.5 s never showed there; every 150 ms, it did at once.
 * Spacing one process's reads does not help: every instance (and any monitoring tool) reads it.
 *
 * Failure modes: a transaction the status does not list (none, or a list cut short by InnoDB on
 * a node with very many) reads as not waiting, so its write counts against the master (fails
 * toward opening the breaker, as before).
 */

/** thread id → `LOCK WAIT` or `RUNNING`; undefined when not readable (no PROCESS privilege) */
export type TrxStateMap = Map<number, string> | undefined;

/**
 * The transactions of a `SHOW ENGINE INNODB STATUS` text, by the thread that runs them. Each is a
 * `---TRANSACTION` block of the TRANSACTIONS section naming `MariaDB thread id N,` (MySQL:
 * `MySQL thread id N,`), with a `LOCK WAIT` line while it waits for a lock.
 */
export function innodbTrxStates(status: string): Map<number, string> {
  const states = new Map<number, string>();
  for (const block of status.split(/^---TRANSACTION /m).slice(1)) {
    const thread = /^(?:MariaDB|MySQL) thread id (\d+),/m.exec(block)?.[1];
    if (thread !== undefined)
      states.set(Number(thread), /^LOCK WAIT /m.test(block) ? 'LOCK WAIT' : 'RUNNING');
  }
  return states;
}

/** Reads shared by the kills of one node that ask while one is running (one text, not one each). */
export class TrxStates {
  private shared: Promise<TrxStateMap> | undefined;

  /** the states from the read running, or a new one; rejects as `query` does */
  read(query: () => Promise<TrxStateMap>): Promise<TrxStateMap> {
    if (this.shared) return this.shared;
    const read = query().finally(() => {
      if (this.shared === read) this.shared = undefined;
    });
    this.shared = read;
    return read;
  }
}
