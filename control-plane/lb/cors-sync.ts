/**
 * Applies `cors/allowed_origins` to HAProxy's map of CORS origins (stack/haproxy-config.ts
 * corsRules: the CORS headers of HAProxy's own answers) through its runtime API, without reload.
 *
 * The map is the one whose file is named `CORS_MAP_FILE` in `show map`. Its entries are the origins,
 * each as key and value (`*` alone for every origin). `reconcile()` reads the entries, and only
 * when they differ from the origins replaces them all at once: `prepare map` opens a new version,
 * `add map @<version>` fills it, `commit map @<version>` makes it the one in force and drops the
 * old entries, so a request never meets a half-written list. Calling it every second costs one
 * `show map` and one `show map #<id>`.
 *
 * An HAProxy whose config has no such map (rendered before it existed, or by hand) cannot be
 * applied: `warn` says so once, and the weights are synced as before. Errors of the runtime API
 * (HAProxy restarting, an unexpected answer) are thrown; callers retry.
 */
import { CORS_MAP_FILE } from '../../stack/haproxy-config.js';
import { haproxyCommand } from './haproxy-runtime.js';

export interface CorsSyncOptions {
  socketPath: string;
  log: (line: string) => void;
  /** said once per run of missing maps: HAProxy's config has no CORS origins map */
  warn: (line: string) => void;
}

export interface CorsReconciled {
  /** the origins now in HAProxy's map, or undefined when HAProxy has no such map */
  origins: readonly string[] | undefined;
  /** whether the map was replaced */
  changed: boolean;
}

/** `show map`'s row of the CORS map: `<id> (<file>) …`; undefined when there is none */
export function corsMapId(showMap: string): string | undefined {
  for (const line of showMap.split('\n')) {
    const m = /^(\d+) \(([^)]*)\)/.exec(line);
    if (m && (m[2] === CORS_MAP_FILE || m[2]!.endsWith(`/${CORS_MAP_FILE}`))) return `#${m[1]}`;
  }
  return undefined;
}

/** the keys of `show map #<id>`'s rows (`0x55… <key> <value>`), in HAProxy's order */
export function mapKeys(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^0x[0-9a-f]+ (\S+) /i.exec(l)?.[1])
    .filter((k): k is string => k !== undefined);
}

/**
 * What an origin may hold to go to the runtime API as one word: the runtime CLI ends a command at
 * `;` and splits at blanks, and `\` escapes. cors-origins.ts lets no other origin through; this is
 * the check at the point of use.
 */
const RUNTIME_WORD = /^(?:\*|https?:\/\/[A-Za-z0-9_.:[\]-]+)$/;

/** how many times a sync that lost to another writer's commit starts again */
const ATTEMPTS = 3;

/** the same origins, in any order */
export const sameOrigins = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && [...a].sort().join(' ') === [...b].sort().join(' ');

export class CorsSync {
  private warnedMissing = false;

  constructor(private readonly opts: CorsSyncOptions) {}

  /**
   * Makes HAProxy's map list `origins`. Two writers at once (the daemon and a one-shot run) each
   * prepare a version; HAProxy commits the later one and refuses to commit an older one after it
   * ("Version number out of range"): the one refused reads the map again, and is done when it
   * lists these origins, else starts again (at most ATTEMPTS times). A version prepared and never
   * committed (an error between) holds its entries until the next commit drops it.
   */
  async reconcile(origins: readonly string[]): Promise<CorsReconciled> {
    const { socketPath } = this.opts;
    const unfit = origins.find((o) => !RUNTIME_WORD.test(o));
    if (unfit !== undefined)
      throw new Error(
        `cors/allowed_origins: ${JSON.stringify(unfit)} cannot be written to HAProxy's map (an origin is http(s)://host[:port] of letters, digits and "-_.:[]")`,
      );
    for (let attempt = 1; ; attempt++) {
      const id = corsMapId(await haproxyCommand(socketPath, 'show map'));
      if (id === undefined) {
        if (!this.warnedMissing)
          this.opts.warn(
            `haproxy has no map ${CORS_MAP_FILE} (its config predates it): its own answers (503, 504, 429, …) carry no CORS header; re-render and restart it`,
          );
        this.warnedMissing = true;
        return { origins: undefined, changed: false };
      }
      this.warnedMissing = false;
      if (sameOrigins(mapKeys(await haproxyCommand(socketPath, `show map ${id}`)), origins))
        return { origins, changed: false };
      const prepared = await haproxyCommand(socketPath, `prepare map ${id}`);
      const version = /New version created: (\d+)/.exec(prepared)?.[1];
      if (version === undefined)
        throw new Error(`haproxy runtime API: prepare of map ${id}: ${prepared.trim()}`);
      for (const origin of origins) {
        const answer = (
          await haproxyCommand(socketPath, `add map @${version} ${id} ${origin} ${origin}`)
        ).trim();
        if (answer !== '') throw new Error(`haproxy runtime API: add of ${origin} to map ${id}: ${answer}`);
      }
      const committed = (await haproxyCommand(socketPath, `commit map @${version} ${id}`)).trim();
      if (committed === '') {
        this.opts.log(
          `applied: cors/allowed_origins → haproxy map ${CORS_MAP_FILE}: ${origins.length === 0 ? 'no origin' : origins.join(', ')}`,
        );
        return { origins, changed: true };
      }
      // another writer committed a later version meanwhile
      if (!/out of range/i.test(committed) || attempt === ATTEMPTS)
        throw new Error(`haproxy runtime API: commit of map ${id}: ${committed}`);
    }
  }
}
