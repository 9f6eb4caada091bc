/**
 * Minimal client of HAProxy's runtime API (the stats socket, `level admin`): one command per
 * connection, answer read until HAProxy closes it. Errors (socket missing while HAProxy
 * restarts, refused) are thrown as-is; callers retry.
 */

import { connect } from 'node:net';
import { formatHostPort } from '../../src/config/host-port.js';

export async function haproxyCommand(socketPath: string, command: string, timeoutMs = 2000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let out = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`haproxy runtime API: no answer to "${command}" within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(`${command}\n`));
    sock.on('data', (d) => {
      out += d;
    });
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/**
 * `srv_admin_state` bits of `show servers state` (HAProxy 2.6 `enum srv_admin`, include/haproxy/
 * server-t.h). FDRAIN is set both by `set server … state drain` and by an agent-check answering
 * `drain` (both call srv_adm_set_drain); an agent answering `ready` clears FDRAIN and FMAINT.
 */
export const ADMIN = {
  /** forced maintenance: `set server … state maint`, or an agent's `maint` */
  FMAINT: 0x01,
  /** maintenance inherited from a tracked server */
  IMAINT: 0x02,
  /** maintenance from the configuration (`disabled`) */
  CMAINT: 0x04,
  /** forced drain: `set server … state drain`, or an agent's `drain` */
  FDRAIN: 0x08,
  /** drain inherited from a tracked server */
  IDRAIN: 0x10,
  /** maintenance after an address resolution failure */
  RMAINT: 0x20,
} as const;
const ANY_MAINT = ADMIN.FMAINT | ADMIN.IMAINT | ADMIN.CMAINT | ADMIN.RMAINT;
const ANY_DRAIN = ADMIN.FDRAIN | ADMIN.IDRAIN;

export interface ServerState {
  name: string;
  /** user weight in force (`srv_uweight`): set by `set server … weight` and agent percentages; 0 drains */
  weight: number;
  /** the weight in the config file (`srv_iweight`), which a new HAProxy process starts from */
  initialWeight: number;
  /** `srv_admin_state`, the ADMIN bits */
  admin: number;
  /** in an administrative drain (FDRAIN or IDRAIN): an operator's, or the agent's */
  draining: boolean;
  /** in any maintenance (FMAINT, IMAINT, CMAINT, RMAINT) */
  maintenance: boolean;
  /** `srv_op_state` 2 (running): its checks pass; 0 stopped (down), 1 starting, 3 stopping */
  running: boolean;
  /** `srv_op_state` 1: up again, in its slowstart (HAProxy sends it requests already); unset: no */
  starting?: boolean;
  /** `srv_addr:srv_port` (an IPv6 address in brackets); unset when HAProxy did not say */
  address?: string;
}

/**
 * The backend the frontend uses while the main one has no usable server (`nbsrv` 0): the same
 * servers with the same agent-check (so an etcd weight of 0 and a shutdown's `drain` hold there
 * too, with or without lb sync, which also sets its weights: lb/weight-sync.ts), and a check that
 * waits 2 s for `/health/ready` (stack/haproxy-config.ts FALLBACK_CHECK_TIMEOUT_SECONDS) instead
 * of the main one's 1 s, one failure taking a server out. Fail-open: a busy survivor whose check
 * took over 1 s was marked DOWN in the main backend with its peer gone, and HAProxy answered every
 * request 503 for 2–6 s (an outside check: 241 and 54 answers, load average 5.9 on 2 cores). The
 * main backend keeps its fast checks, so a hung instance still leaves rotation in about 3.5 s
 * while another serves; here it is out after one such wait, in about 2–3 s, before the main backend empties, so with
 * every instance hung HAProxy still answers 503 at once (a review: a 5 s check with two failures
 * held requests 10–30 s). With every weight 0 there is no server either: 503 as before. Not
 * followed here: a drain or maintenance set by hand on the main backend's server.
 */
export const fallbackBackend = (backend: string): string => `${backend}_fallback`;

/** HAProxy answered that it has no backend of that name: a wrong name, not an outage. */
export class UnknownBackendError extends Error {
  constructor(readonly backend: string) {
    super(`haproxy has no backend ${backend}`);
  }
}

/**
 * a server's state in one word, as `status` prints it. A drained server whose checks fail is
 * `down`: an instance drains itself as it shuts down, and its drain outlives the process until
 * the next one's agent reports (before, an exited instance read `drain`)
 */
export const serverStateWord = (sv: ServerState): 'maint' | 'drain' | 'up' | 'down' => {
  if (sv.maintenance) return 'maint';
  if (sv.draining) return sv.running || sv.starting === true ? 'drain' : 'down';
  return sv.running ? 'up' : 'down';
};

/**
 * `show servers state <backend>`: one row per server. Throws UnknownBackendError for a name
 * HAProxy does not know.
 */
export async function showServers(socketPath: string, backend: string): Promise<ServerState[]> {
  const text = await haproxyCommand(socketPath, `show servers state ${backend}`);
  if (/^Can't find backend/.test(text.trim())) throw new UnknownBackendError(backend);
  const lines = text.split('\n').filter((l) => l.trim() && !l.startsWith('#'));
  const rows: ServerState[] = [];
  for (const line of lines.slice(1)) {
    // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight …
    const f = line.trim().split(/\s+/);
    if (f.length < 9 || f[1] !== backend) continue;
    const admin = Number(f[6]);
    rows.push({
      name: f[3]!,
      weight: Number(f[7]),
      initialWeight: Number(f[8]),
      admin,
      draining: (admin & ANY_DRAIN) !== 0,
      maintenance: (admin & ANY_MAINT) !== 0,
      running: Number(f[5]) === 2,
      starting: Number(f[5]) === 1,
      // an unresolved server shows `-` and port 0: no address
      ...(f[4] && f[4] !== '-' && /^[1-9]\d*$/.test(f[18] ?? '')
        ? { address: formatHostPort(f[4], Number(f[18])) }
        : {}),
    });
  }
  return rows;
}

/** Identity of the running HAProxy process (`show info` Pid + start), to notice restarts. */
export async function haproxyIdentity(socketPath: string): Promise<string> {
  const info = await haproxyCommand(socketPath, 'show info');
  const pid = /^Pid: (\d+)/m.exec(info)?.[1];
  const start = /^Start_time_sec: (\d+)/m.exec(info)?.[1] ?? '';
  if (!pid) throw new Error('haproxy runtime API: unexpected answer to "show info"');
  return `${pid}@${start}`;
}
