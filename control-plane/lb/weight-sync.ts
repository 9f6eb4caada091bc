/**
 * Applies `lb/weights/<instance>` to HAProxy through its runtime API, without reload, as the
 * server's weight and nothing else: weight N (0–256) → `set server <backend>/<instance> weight N`.
 * Weight 0 is HAProxy's own drain by weight (`srv_uweight` 0: no new connections except persistent
 * ones, existing ones finish). A server of the backend without a key gets its configured weight,
 * the one in haproxy.cfg (`srv_iweight` in `show servers state`): deleting a key undoes what it did,
 * a weight-0 drain included. `reconcile()` compares HAProxy's live weights with these and fixes only
 * what differs, so calling it every second also re-applies everything after HAProxy restarts (a new
 * process starts from its config file's weights).
 *
 * The rule for drains: lb sync never sends `set server … state …`, never sets or clears the
 * administrative drain/maintenance bits of `srv_admin_state`. HAProxy cannot say who set those:
 * `set server … state drain` by an operator and an agent-check answering `drain` (an instance
 * shutting down; for an etcd weight of 0 the agent answers `ready up 0%`, a weight) both set the
 * same FDRAIN bit, and an agent's
 * `ready` clears FDRAIN and FMAINT alike. So those bits belong to the operator and to the agent,
 * and lb sync's own drain is the weight 0 it set, visible in HAProxy itself, to a one-shot run as
 * much as to the daemon or to a daemon restarted since. A server drained or in maintenance by hand
 * keeps that state whatever the weights (its weight is set, and applies once it is made ready).
 * A drain left by an older lb sync (which drained by `state drain`) is cleared by the instance's
 * agent (`ready` as soon as its weight is no longer 0), or by hand with `state ready`.
 *
 * A server in `held` (its key exists but the schema rejects it and no last good value of it is
 * known: a one-shot run) is left at the weight it has: the key is not absent, so the haproxy.cfg
 * weight would be a guess the instances do not make.
 *
 * The same weights go to the backend's fallback (`<backend>_fallback`, haproxy-runtime.ts
 * fallbackBackend) when HAProxy has one, so a drain by weight 0 holds there too (its servers have
 * the instances' agent-check as well, which reports the same weight). Its commands are neither
 * logged nor reported in `sent` (a one-shot run's "already matches" judges the main backend), and
 * its missing servers are not warned about.
 *
 * A weighted instance that has no server in the backend cannot be applied: `warn` names every
 * such instance, each time that set changes (so a daemon calling reconcile() again and again
 * says it once, not on every call). A backend HAProxy does not have throws UnknownBackendError.
 */
import {
  fallbackBackend,
  haproxyCommand,
  type ServerState,
  showServers,
  UnknownBackendError,
} from './haproxy-runtime.js';

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
  /** servers of the backend without a key, set (or left) at their configured weight, sorted */
  unweighted: string[];
  /** servers of `held` in the backend, left at the weight they have, sorted */
  held: string[];
}

export class WeightSync {
  /** the `missing` of the last reconcile, as text, to warn only when it changes */
  private lastMissing = '';

  constructor(private readonly opts: WeightSyncOptions) {}

  /** Throws when HAProxy is unreachable, and UnknownBackendError when it has no such backend. */
  async reconcile(
    desired: ReadonlyMap<string, number>,
    /** instances whose key exists with no value in force: never given their haproxy.cfg weight */
    held: ReadonlySet<string> = new Set(),
    /**
     * the servers to set, when not all: a daemon applying a changed key leaves the others' weights
     * alone, which their agents may have lowered (agent-reply.ts). The reports cover all servers.
     */
    only?: ReadonlySet<string>,
  ): Promise<Reconciled> {
    const { socketPath, backend } = this.opts;
    const servers = await showServers(socketPath, backend);
    const names = new Set(servers.map((s) => s.name));
    const missing = [...desired.keys()].filter((instance) => !names.has(instance)).sort();
    const missingText = missing.map((id) => `lb/weights/${id}`).join(', ');
    if (missing.length > 0 && missingText !== this.lastMissing) {
      this.opts.warn(`no server in haproxy backend ${backend} for ${missingText}; not applied`);
    }
    this.lastMissing = missingText;
    const unweighted = servers
      .filter((s) => !desired.has(s.name) && !held.has(s.name))
      .map((s) => s.name)
      .sort();
    const heldServers = servers
      .filter((s) => !desired.has(s.name) && held.has(s.name))
      .map((s) => s.name)
      .sort();
    const sent = await this.apply(backend, servers, desired, held, only);
    // the fallback backend's servers take the same weights, when HAProxy has one
    const fallback = fallbackBackend(backend);
    const spare = await showServers(socketPath, fallback).catch((error: unknown) => {
      if (error instanceof UnknownBackendError) return [];
      throw error;
    });
    await this.apply(fallback, spare, desired, held, only, false);
    return { sent, missing, unweighted, held: heldServers };
  }

  /** Sets each server of `backend` that is off its weight; the commands sent. */
  private async apply(
    backend: string,
    servers: readonly ServerState[],
    desired: ReadonlyMap<string, number>,
    held: ReadonlySet<string>,
    only: ReadonlySet<string> | undefined,
    /** log each command (the main backend's); the fallback's follow them unsaid */
    logged = true,
  ): Promise<string[]> {
    const { socketPath } = this.opts;
    const sent: string[] = [];
    for (const s of servers) {
      if (!desired.has(s.name) && held.has(s.name)) continue;
      if (only && !only.has(s.name)) continue;
      const weight = desired.get(s.name) ?? s.initialWeight;
      if (s.weight === weight) continue;
      const cmd = `set server ${backend}/${s.name} weight ${weight}`;
      const answer = (await haproxyCommand(socketPath, cmd)).trim();
      if (answer && !/^(Backend is using a static LB algorithm|$)/.test(answer)) {
        this.opts.log(`haproxy: ${cmd}: ${answer}`);
      }
      sent.push(cmd);
      if (logged)
        this.opts.log(
          desired.has(s.name)
            ? `applied: ${cmd}`
            : `applied: ${cmd} (no lb/weights/${s.name}: haproxy.cfg weight)`,
        );
    }
    return sent;
  }
}
