/**
 * Applies `lb/weights/<instance>` to HAProxy through its runtime API, without reload:
 * weight N > 0 → `set server <backend>/<instance> weight N` (and `state ready` if it was
 * drained); 0 → `state drain` (existing connections finish, no new ones). `reconcile()` compares
 * HAProxy's live state with the desired weights and fixes only what differs, so calling it every
 * second also re-applies everything after HAProxy restarts (a new process starts from its config
 * file's weights). Servers in maintenance (an operator's `state maint`) are left alone.
 *
 * A weighted instance that has no server in the backend cannot be applied: `warn` names every
 * such instance, each time that set changes (so a daemon calling reconcile() again and again
 * says it once, not on every call). A backend HAProxy does not have throws UnknownBackendError.
 */
import { haproxyCommand, showServers } from './haproxy-runtime.js';

export interface WeightSyncOptions {
  socketPath: string;
  backend: string;
  log: (line: string) => void;
  /** one line naming the weighted instances without a server, when that set changes */
  warn: (line: string) => void;
}

export interface Reconciled {
  /** the commands sent */
  sent: string[];
  /** weighted instances without a server in the backend, sorted */
  missing: string[];
}

export class WeightSync {
  /** the `missing` of the last reconcile, as text, to warn only when it changes */
  private lastMissing = '';

  constructor(private readonly opts: WeightSyncOptions) {}

  /** Throws when HAProxy is unreachable, and UnknownBackendError when it has no such backend. */
  async reconcile(desired: ReadonlyMap<string, number>): Promise<Reconciled> {
    const { socketPath, backend } = this.opts;
    const servers = new Map((await showServers(socketPath, backend)).map((s) => [s.name, s]));
    const missing = [...desired.keys()].filter((instance) => !servers.has(instance)).sort();
    const missingText = missing.map((id) => `lb/weights/${id}`).join(', ');
    if (missing.length > 0 && missingText !== this.lastMissing) {
      this.opts.warn(`no server in haproxy backend ${backend} for ${missingText}; not applied`);
    }
    this.lastMissing = missingText;
    const sent: string[] = [];
    for (const [instance, weight] of desired) {
      const s = servers.get(instance);
      if (!s) continue;
      const commands: string[] = [];
      if (weight === 0) {
        if (!s.draining) commands.push(`set server ${backend}/${instance} state drain`);
      } else {
        if (s.draining) commands.push(`set server ${backend}/${instance} state ready`);
        if (s.weight !== weight) commands.push(`set server ${backend}/${instance} weight ${weight}`);
      }
      for (const cmd of commands) {
        const answer = (await haproxyCommand(socketPath, cmd)).trim();
        if (answer && !/^(Backend is using a static LB algorithm|$)/.test(answer)) {
          this.opts.log(`haproxy: ${cmd}: ${answer}`);
        }
        sent.push(cmd);
        this.opts.log(`applied: ${cmd}`);
      }
    }
    return { sent, missing };
  }
}
