/**
 * An operator's maintenance or drain of a server of the main backend, held in its fallback too
 * (`lb sync --watch`, every tick). The fallback (haproxy-runtime.ts fallbackBackend) has the same
 * servers with their own checks: before, `set server api/api-1 state maint` took api-1 out of
 * `api` only, and once `api` had no usable server HAProxy sent requests to api-1 through
 * `api_fallback` all the same.
 *
 * What is mirrored: FMAINT (`set server … state maint`) and FDRAIN (`state drain`), as
 * `set server <fallback>/<name> state maint|drain`; when the main server leaves that state, the
 * fallback's server is set `ready` again, but only where this mirror set it (`mirrored`): an
 * instance's agent-check sets its own `drain` on both backends as it shuts down, a second or so
 * apart, and a mirror that cleared a fallback drain it did not set would fight it. So the mirror
 * remembers what it set, in memory: a daemon started again does not clear a fallback state its
 * predecessor set (the instance's next start does: its agent's `ready` ends any drain or
 * maintenance on both backends, agent-reply.ts).
 *
 * Maintenance wins over drain; a weight of 0 is no admin state and is not mirrored here (the
 * weights go to both backends: weight-sync.ts).
 */
import {
  ADMIN,
  fallbackBackend,
  haproxyCommand,
  type ServerState,
  showServers,
  UnknownBackendError,
} from './haproxy-runtime.js';

export type MirroredState = 'maint' | 'drain';

/** the admin state an operator (or an agent) set on a server, as the mirror copies it */
export function adminStateOf(server: Pick<ServerState, 'admin'>): MirroredState | undefined {
  if (server.admin & ADMIN.FMAINT) return 'maint';
  if (server.admin & ADMIN.FDRAIN) return 'drain';
  return undefined;
}

export interface MirrorStep {
  server: string;
  state: MirroredState | 'ready';
}

/**
 * The steps that bring the fallback's servers to the main backend's states, and what is mirrored
 * after them. Pure: the caller sends `set server <fallback>/<server> state <state>` for each step
 * and keeps `mirrored` for the next call. A server missing from either backend is left alone.
 */
export function mirrorSteps(
  main: readonly ServerState[],
  spare: readonly ServerState[],
  mirrored: ReadonlyMap<string, MirroredState>,
): { steps: MirrorStep[]; mirrored: Map<string, MirroredState> } {
  const steps: MirrorStep[] = [];
  const next = new Map<string, MirroredState>();
  const spareByName = new Map(spare.map((s) => [s.name, s]));
  for (const server of main) {
    const copy = spareByName.get(server.name);
    if (!copy) continue;
    const want = adminStateOf(server);
    const have = adminStateOf(copy);
    const ours = mirrored.get(server.name);
    if (want !== undefined) {
      if (have !== want && !(want === 'drain' && have === 'maint' && ours === undefined)) {
        steps.push({ server: server.name, state: want });
        next.set(server.name, want);
      } else if (ours !== undefined) next.set(server.name, ours);
      continue;
    }
    // the main server left the state: end the fallback's copy of it, if it is ours and still there
    if (ours !== undefined && have === ours) steps.push({ server: server.name, state: 'ready' });
  }
  return { steps, mirrored: next };
}

/**
 * The mirror as `lb sync --watch` runs it: one `run()` per tick reads both backends and sends the
 * steps, logging each. A backend without a fallback is left alone. Throws when HAProxy does not
 * answer (the daemon logs it and tries again on its next tick).
 */
export class AdminMirror {
  private mirrored = new Map<string, MirroredState>();

  constructor(private readonly opts: { socketPath: string; backend: string; log: (line: string) => void }) {}

  async run(): Promise<void> {
    const { socketPath, backend, log } = this.opts;
    const fallback = fallbackBackend(backend);
    const spare = await showServers(socketPath, fallback).catch((error: unknown) => {
      if (error instanceof UnknownBackendError) return undefined;
      throw error;
    });
    if (!spare) return;
    const main = await showServers(socketPath, backend);
    const { steps, mirrored } = mirrorSteps(main, spare, this.mirrored);
    for (const step of steps) {
      const cmd = `set server ${fallback}/${step.server} state ${step.state}`;
      const answer = (await haproxyCommand(socketPath, cmd)).trim();
      log(
        `applied: ${cmd} (${step.state === 'ready' ? `${backend}/${step.server} left its maint/drain` : `as ${backend}/${step.server}`})${answer ? `: ${answer}` : ''}`,
      );
      // kept as sent, so a failure at the next step forgets none of them
      if (step.state === 'ready') this.mirrored.delete(step.server);
      else this.mirrored.set(step.server, step.state);
    }
    this.mirrored = mirrored;
  }
}
