/**
 * Applies `lb/weights/<instance>` to HAProxy through its runtime API, without reload:
 * weight N > 0 → `set server <backend>/<instance> weight N` (and `state ready` if it was
 * drained); 0 → `state drain` (existing connections finish, no new ones). `reconcile()` compares
 * HAProxy's live state with the desired weights and fixes only what differs, so calling it every
 * second also re-applies everything after HAProxy restarts (a new process starts from its config
 * file's weights). Servers in maintenance (an operator's `state maint`) are left alone.
 */
import { haproxyCommand, showServers } from './haproxy-runtime.js';

export interface WeightSyncOptions {
  socketPath: string;
  backend: string;
  log: (line: string) => void;
}

export class WeightSync {
  constructor(private readonly opts: WeightSyncOptions) {}

  /** Returns the commands it sent. Throws when HAProxy is unreachable. */
  async reconcile(desired: ReadonlyMap<string, number>): Promise<string[]> {
    const { socketPath, backend } = this.opts;
    const servers = new Map((await showServers(socketPath, backend)).map((s) => [s.name, s]));
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
    return sent;
  }

  unknownInstances(desired: ReadonlyMap<string, number>, known: string[]): string[] {
    return [...desired.keys()].filter((k) => !known.includes(k));
  }
}
