/**
 * GTID positions of both server flavours, parsed so a position can be compared without asking a
 * server. Runtime-neutral, pure.
 *
 * - MariaDB: a list of `domain-server-seq` (e.g. `0-11-42,1-12-7`), at most one per domain.
 *   Position A contains B when, for every domain of B, A has that domain with seq >= B's — the
 *   rule MASTER_GTID_WAIT uses (the server id is not compared: seq is monotonic per domain).
 * - MySQL: a GTID set `uuid[:tag]:1-5:7,uuid2:1-3`. A contains B when every interval of B is
 *   covered by A's intervals for the same uuid (and tag).
 *
 * `parseGtid` answers undefined for text that is not a position of that flavour; the empty string
 * is the empty position (contains nothing but the empty position).
 */
export type ServerFlavour = 'mariadb' | 'mysql';

export type GtidPosition =
  | {
      flavour: 'mariadb';
      domains: ReadonlyMap<string, bigint>;
      /** each domain's server id, of the position's last transaction in it */
      servers?: ReadonlyMap<string, bigint>;
    }
  | { flavour: 'mysql'; sets: ReadonlyMap<string, readonly (readonly [bigint, bigint])[]> };

export const MAX_GTID_TEXT = 4096;
const MARIADB_GTID = /^(\d{1,10})-(\d{1,10})-(\d{1,20})$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const TAG = /^[a-zA-Z_][a-zA-Z0-9_]{0,31}$/;
const INTERVAL = /^(\d{1,20})(?:-(\d{1,20}))?$/;
/** MariaDB's domain and server ids are 32-bit, its sequence numbers 64-bit; MySQL's GNOs < 2^63 */
const MAX_U32 = 2n ** 32n - 1n;
const MAX_U64 = 2n ** 64n - 1n;
const MAX_GNO = 2n ** 63n - 1n;

function parseMariaDb(text: string): GtidPosition | undefined {
  const domains = new Map<string, bigint>();
  const servers = new Map<string, bigint>();
  for (const part of text.split(',')) {
    const m = MARIADB_GTID.exec(part.trim());
    if (!m) return undefined;
    // out of a server's range: a server would refuse to wait for it (MASTER_GTID_WAIT error 1941)
    if (BigInt(m[1]!) > MAX_U32 || BigInt(m[2]!) > MAX_U32 || BigInt(m[3]!) > MAX_U64) return undefined;
    const domain = String(BigInt(m[1]!));
    if (domains.has(domain)) return undefined;
    domains.set(domain, BigInt(m[3]!));
    servers.set(domain, BigInt(m[2]!));
  }
  return { flavour: 'mariadb', domains, servers };
}

/**
 * Could `replica` (a replica's applied position) have come from the master whose position, read
 * after it, is `master` (and MariaDB binlog state `state`, read after that)?
 * - MariaDB: contained by sequence number per domain, and each domain's last transaction is in the
 *   master's binlog under the server id that wrote it (writtenBy). This needs distinct server ids
 *   on the masters of different shards: with MariaDB's default of 1 on all of them a foreign
 *   replica trailing the master passes.
 * - MySQL: every interval of a server UUID the master's set names is covered by it. A UUID the
 *   master does not name is left out: a replica's `gtid_executed` holds its own transactions
 *   (an `ANALYZE TABLE`, a user made before `read_only`) under its own UUID, and judging those
 *   shut a genuine replica out for good (a review). A replica that has applied something, none
 *   of it under a UUID the master names (while the master names some), follows another server.
 */
export function followsPosition(
  master: GtidPosition,
  replica: GtidPosition,
  state?: ReadonlyMap<string, bigint>,
): boolean {
  if (master.flavour === 'mysql' && replica.flavour === 'mysql') {
    const shared = new Map([...replica.sets].filter(([key]) => master.sets.has(key)));
    if (shared.size === 0 && replica.sets.size > 0 && master.sets.size > 0) return false;
    return gtidContains(master, { flavour: 'mysql', sets: shared });
  }
  return gtidContains(master, replica) && (!state || writtenBy(state, replica));
}

/**
 * MariaDB's `@@gtid_binlog_state`: `domain-server-seq` for every (domain, server id) the binlog
 * holds, several per domain; keyed `domain-server`. undefined when the text is not one.
 */
export function parseBinlogState(raw: string): ReadonlyMap<string, bigint> | undefined {
  const text = raw.replace(/\s+/g, '');
  const state = new Map<string, bigint>();
  if (text === '') return state;
  for (const part of text.split(',')) {
    const m = MARIADB_GTID.exec(part);
    if (!m) return undefined;
    const key = `${BigInt(m[1]!)}-${BigInt(m[2]!)}`;
    const seq = BigInt(m[3]!);
    if ((state.get(key) ?? -1n) < seq) state.set(key, seq);
  }
  return state;
}

/**
 * Could `position` (a replica's) have come from the binlog whose state this is? Each domain's last
 * transaction, by its server id and sequence number, must be in it: a master's binlog holds every
 * transaction its replicas apply, under the server id that wrote it. Sequence numbers alone do not
 * tell a replica of another master whose numbers trail this one's (every shard writes domain 0).
 * A position that names no server ids (not MariaDB's) is not judged: true.
 */
export function writtenBy(state: ReadonlyMap<string, bigint>, position: GtidPosition): boolean {
  if (position.flavour !== 'mariadb' || !position.servers) return true;
  for (const [domain, seq] of position.domains) {
    const server = position.servers.get(domain);
    if (server === undefined) continue;
    if ((state.get(`${domain}-${server}`) ?? -1n) < seq) return false;
  }
  return true;
}

function parseMySql(text: string): GtidPosition | undefined {
  const sets = new Map<string, [bigint, bigint][]>();
  for (const member of text.split(',')) {
    const parts = member.trim().split(':');
    const uuid = parts.shift();
    if (!uuid || !UUID.test(uuid) || parts.length === 0) return undefined;
    let key = uuid.toLowerCase();
    let sawInterval = false;
    for (const part of parts) {
      const m = INTERVAL.exec(part);
      if (m) {
        const start = BigInt(m[1]!);
        const end = m[2] === undefined ? start : BigInt(m[2]);
        if (start < 1n || end < start || end > MAX_GNO) return undefined;
        const list = sets.get(key) ?? [];
        list.push([start, end]);
        sets.set(key, list);
        sawInterval = true;
      } else if (TAG.test(part)) {
        key = `${uuid.toLowerCase()}:${part.toLowerCase()}`;
        sawInterval = false;
      } else {
        return undefined;
      }
    }
    if (!sawInterval) return undefined;
  }
  for (const [key, list] of sets) sets.set(key, mergeIntervals(list));
  return { flavour: 'mysql', sets };
}

function mergeIntervals(list: [bigint, bigint][]): [bigint, bigint][] {
  const sorted = [...list].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  const out: [bigint, bigint][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + 1n) last[1] = e > last[1] ? e : last[1];
    else out.push([s, e]);
  }
  return out;
}

/**
 * The flavour a position's text is written in: a MySQL GTID set names server UUIDs (`uuid:1-7`),
 * a MariaDB position never has a `:` (`0-1-7`). Empty text (no position) counts as MariaDB; it
 * parses as the empty set either way.
 */
export function gtidTextFlavour(text: string): ServerFlavour {
  return text.includes(':') ? 'mysql' : 'mariadb';
}

export function parseGtid(flavour: ServerFlavour, raw: string): GtidPosition | undefined {
  if (raw.length > MAX_GTID_TEXT) return undefined;
  const text = raw.replace(/\s+/g, '');
  if (text === '')
    return flavour === 'mariadb' ? { flavour, domains: new Map() } : { flavour, sets: new Map() };
  return flavour === 'mariadb' ? parseMariaDb(text) : parseMySql(text);
}

/** Does `a` include everything of `b`? Positions of different flavours never contain each other. */
export function gtidContains(a: GtidPosition, b: GtidPosition): boolean {
  if (a.flavour === 'mariadb' && b.flavour === 'mariadb') {
    for (const [domain, seq] of b.domains) {
      const have = a.domains.get(domain);
      if (have === undefined || have < seq) return false;
    }
    return true;
  }
  if (a.flavour === 'mysql' && b.flavour === 'mysql') {
    for (const [key, intervals] of b.sets) {
      const have = a.sets.get(key) ?? [];
      for (const [s, e] of intervals) {
        if (!have.some(([hs, he]) => hs <= s && e <= he)) return false;
      }
    }
    return true;
  }
  return false;
}

/** A position as the server writes it (MariaDB `domain-server-seq,…`; MySQL `uuid:1-5:7,…`), for logs. */
export function gtidText(position: GtidPosition): string {
  if (position.flavour === 'mariadb')
    return [...position.domains]
      .map(([domain, seq]) => `${domain}-${position.servers?.get(domain) ?? '?'}-${seq}`)
      .join(',');
  return [...position.sets]
    .map(
      ([uuid, intervals]) =>
        `${uuid}:${intervals.map(([s, e]) => (s === e ? `${s}` : `${s}-${e}`)).join(':')}`,
    )
    .join(',');
}

/**
 * Everything of `a` and of `b`: per MariaDB domain the higher sequence number (and its server id),
 * per MySQL source the union of the intervals (merged, so that a union of many single commits
 * stays a few intervals). Positions of different flavours: `a`.
 */
export function gtidUnion(a: GtidPosition, b: GtidPosition): GtidPosition {
  if (a.flavour === 'mariadb' && b.flavour === 'mariadb') {
    const domains = new Map(a.domains);
    const servers = new Map(a.servers ?? []);
    for (const [domain, seq] of b.domains) {
      const have = domains.get(domain);
      if (have !== undefined && have >= seq) continue;
      domains.set(domain, seq);
      const server = b.servers?.get(domain);
      if (server === undefined) servers.delete(domain);
      else servers.set(domain, server);
    }
    return { flavour: 'mariadb', domains, servers };
  }
  if (a.flavour === 'mysql' && b.flavour === 'mysql') {
    const sets = new Map<string, readonly (readonly [bigint, bigint])[]>(a.sets);
    for (const [key, intervals] of b.sets) {
      const all = [...(sets.get(key) ?? []), ...intervals].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0));
      const merged: [bigint, bigint][] = [];
      for (const [s, e] of all) {
        const last = merged[merged.length - 1];
        if (last && s <= last[1] + 1n) last[1] = e > last[1] ? e : last[1];
        else merged.push([s, e]);
      }
      sets.set(key, merged);
    }
    return { flavour: 'mysql', sets };
  }
  return a;
}
