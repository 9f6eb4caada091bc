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
 * Failure modes: a text InnoDB cut short (over 1 MB: hundreds of waiting transactions) or a read
 * that failed tells nothing, and the statement's PROCESSLIST state decides, as without the
 * privilege. Each read holds InnoDB's lock-system latch while it prints the list: reads are
 * shared (at most one running and one waiting per node and process), and made only for writes
 * abandoned at their call timeout.
 */

/**
 * thread id → `LOCK WAIT` or `RUNNING` (a transaction not listed: none); undefined when not
 * known: not readable (no PROCESS privilege), or the list cut short
 */
export type TrxStateMap = Map<number, string> | undefined;

/**
 * The transactions of a `SHOW ENGINE INNODB STATUS` text, by the thread that runs them; undefined
 * when InnoDB cut the text (`...truncated...`: it drops the start of the list past 1 MB, so an
 * unlisted transaction would not mean none). Each is a `---TRANSACTION` block whose header lines
 * say `LOCK WAIT …` while it waits and then `MariaDB thread id N,` (MySQL: `MySQL thread id N,`);
 * only the lines up to that one are read: the statement's text follows it, and a value in it (a
 * tenant's book title) could hold a line of its own. Lines are split at `\n` alone (mysql2
 * escapes CR and LF in values, not U+2028 or U+2029, which a `^` with the `m` flag would take for
 * line breaks), and a thread named twice keeps its first block. Only the TRANSACTIONS section is
 * read, to the FILE I/O section that follows it; a text without both tells nothing (undefined).
 */
export function innodbTrxStates(status: string): TrxStateMap {
  if (status.includes('...truncated...')) return undefined;
  const states = new Map<number, string>();
  let inSection = false;
  let waiting: boolean | undefined;
  for (const line of status.split('\n')) {
    if (!inSection) {
      // the sections before (a deadlock's statements among them) are not read
      if (line === 'TRANSACTIONS') inSection = true;
      continue;
    }
    // the section that follows it in MariaDB and MySQL alike
    if (line === 'FILE I/O') return states;
    if (line.startsWith('---TRANSACTION ')) {
      waiting = false;
      continue;
    }
    if (waiting === undefined) continue;
    // a block with no thread line ("not started") ends at the next rule
    if (line.startsWith('--')) {
      waiting = undefined;
      continue;
    }
    if (line.startsWith('LOCK WAIT ')) waiting = true;
    const thread = /^(?:MariaDB|MySQL) thread id (\d+),/.exec(line)?.[1];
    if (thread === undefined) continue;
    if (!states.has(Number(thread))) states.set(Number(thread), waiting ? 'LOCK WAIT' : 'RUNNING');
    // the rest of the block (the statement's text, the lock it waits for) is not read
    waiting = undefined;
  }
  // no TRANSACTIONS section, or not its end: not a text this parser knows
  return undefined;
}

/**
 * Reads shared by the kills of one node: a kill that asks while a read runs gets the next one,
 * begun once that read ended, which every kill asking meanwhile shares (so a read never predates
 * the kill it answers, and at most one waits behind the one running).
 */
export class TrxStates {
  private running: Promise<TrxStateMap> | undefined;
  private next: Promise<TrxStateMap> | undefined;

  /** the states from a read begun after this call; rejects as `query` does */
  read(query: () => Promise<TrxStateMap>): Promise<TrxStateMap> {
    if (this.next) return this.next;
    const running = this.running;
    if (!running) return this.start(query);
    const next = running
      .catch(() => undefined)
      .then(() => {
        this.next = undefined;
        return this.start(query);
      });
    this.next = next;
    return next;
  }

  private start(query: () => Promise<TrxStateMap>): Promise<TrxStateMap> {
    const read = query().finally(() => {
      if (this.running === read) this.running = undefined;
    });
    this.running = read;
    return read;
  }
}
