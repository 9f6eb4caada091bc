/**
 * An operator's maintenance or drain of a server of the main backend, held in its fallback too
 * (`lb sync --watch`, every tick). The fallback (haproxy-runtime.ts fallbackBackend) has the same
 * servers with their own checks: before, `set server api/api-1 state maint` took api-1 out of
 * `api` only, and once `api` had no usable server HAProxy sent requests to api-1 through
 * `api_fallback` all the same.
 *
 * The fallback's FMAINT and FDRAIN follow the main server's (`set server <fallback>/<name> state
 * maint|drain|ready`), from what both backends show now: no memory, so a daemon started again, or
 * two at once, agree. One exception: a fallback drain while the main server has none is left when
 * that server fails its checks there, since it is an instance's agent-check answering `drain` as
 * the instance shuts down (it answers `/health/ready` 503 meanwhile, so the fallback's check takes
 * it down within about 2 s); the agent checks of the two backends run apart, and ending it would
 * fight the agent. A running server's fallback drain without one in the main backend is a copy
 * left behind (its main server made ready while no daemon ran) and is ended. The agent never
 * answers `maint`, so a fallback maintenance is always a copy: one set by hand on the fallback
 * itself is ended too (the fallback's states are lb sync's).
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
 * The steps that bring the fallback's servers to the main backend's states (see the top of this
 * file). Pure: the caller sends `set server <fallback>/<server> state <state>` for each. A server
 * missing from either backend is left alone.
 */
export function mirrorSteps(main: readonly ServerState[], spare: readonly ServerState[]): MirrorStep[] {
  const steps: MirrorStep[] = [];
  const spareByName = new Map(spare.map((s) => [s.name, s]));
  for (const server of main) {
    const copy = spareByName.get(server.name);
    if (!copy) continue;
    const want = adminStateOf(server);
    const have = adminStateOf(copy);
    if (want !== undefined) {
      if (have !== want) steps.push({ server: server.name, state: want });
    } else if (have === 'maint' || (have === 'drain' && copy.running)) {
      steps.push({ server: server.name, state: 'ready' });
    }
  }
  return steps;
}

/**
 * The mirror as `lb sync --watch` runs it: one `run()` per tick reads both backends and sends the
 * steps, logging each. A backend without a fallback is left alone. Throws when HAProxy does not
 * answer (the daemon logs it and tries again on its next tick).
 */
export class AdminMirror {
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
    for (const step of mirrorSteps(main, spare)) {
      const cmd = `set server ${fallback}/${step.server} state ${step.state}`;
      const answer = (await haproxyCommand(socketPath, cmd)).trim();
      log(
        `applied: ${cmd} (${step.state === 'ready' ? `${backend}/${step.server} is in neither` : `as ${backend}/${step.server}`})${answer ? `: ${answer}` : ''}`,
      );
    }
  }
}
