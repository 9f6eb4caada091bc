/**
 * Whether a replica's applied position could have come from a master, judged from the two
 * positions alone: the one check `shards add-replica`, `shards set-master` and `tenants move` make
 * before they trust that a replica serves its shard's master's rows. Pure.
 *
 * The replica's position must be read first and the master's after it: a replica of that master
 * can only have applied what the master had committed by then, so its position is contained in
 * the master's (gtid.ts `gtidContains`). A replica that has applied transactions the master does
 * not have follows another server (an outside check added shard-1's replica to a shard whose
 * master is shard-2's: exit 0, and a move then said that replica "applied the copy").
 *
 * MariaDB positions compare by sequence number per domain (MASTER_GTID_WAIT's rule), so with the
 * master's `@@gtid_binlog_state` (`binlogState`) the server id of each domain's last transaction
 * the replica applied must also be in the master's binlog that far (gtid.ts writtenBy): that
 * catches a replica of another master whose sequence numbers are lower than this master's.
 */
import { followsPosition, parseBinlogState, parseGtid, type ServerFlavour } from '../src/routing/gtid.js';

/**
 * true: the replica's applied position is contained in the master's (read after it); false: the
 * replica has applied transactions the master does not have; undefined: a text is not a position
 * of `flavour`, so nothing can be said.
 */
export function followsMaster(
  replicaText: string,
  masterText: string,
  flavour: ServerFlavour,
  binlogState?: string,
): boolean | undefined {
  const replica = parseGtid(flavour, replicaText);
  const master = parseGtid(flavour, masterText);
  const state = binlogState === undefined ? undefined : parseBinlogState(binlogState);
  if (!replica || !master || (binlogState !== undefined && !state)) return undefined;
  return followsPosition(master, replica, state);
}
