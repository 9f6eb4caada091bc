/**
 * Minimal client of HAProxy's runtime API (the stats socket, `level admin`): one command per
 * connection, answer read until HAProxy closes it. Errors (socket missing while HAProxy
 * restarts, refused) are thrown as-is; callers retry.
 */
import { connect } from 'node:net';

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

export interface ServerState {
  name: string;
  /** user weight in force */
  weight: number;
  /** administratively draining (`set server … state drain`) */
  draining: boolean;
  maintenance: boolean;
}

/** HAProxy answered that it has no backend of that name: a wrong name, not an outage. */
export class UnknownBackendError extends Error {
  constructor(readonly backend: string) {
    super(`haproxy has no backend ${backend}`);
  }
}

/** `show servers state <backend>`: one row per server. Throws UnknownBackendError for a name HAProxy does not know. */
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
      draining: (admin & 0x08) !== 0,
      maintenance: (admin & 0x01) !== 0,
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
