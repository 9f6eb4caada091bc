/**
 * What build a Node process runs: `dist/build-info.json`, written by `npm run build`
 * (scripts/write-build-info.mjs: the package version and the commit built from). An API instance
 * registers it (`instances/<id>` `build`, listed by `shardgate-ctl status`) and both the API and
 * the email worker export it as `shardgate_build_info{version,commit} 1`, so a rolling deploy
 * shows which instance runs what.
 * Failure mode: no file (run from source with tsx, a build older than this) or an unreadable one
 * reads as version and commit `unknown`; nothing else depends on it.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Metrics } from '../observability/metrics.js';

export interface BuildInfo {
  version: string;
  commit: string;
}

const UNKNOWN: BuildInfo = { version: 'unknown', commit: 'unknown' };
/**
 * what a field may hold: a version or a commit (with `-dirty`), nothing a log or a label would
 * choke on; 40 characters each, so the label fits the registration's 100 (schema.ts)
 */
const FIELD = /^[0-9A-Za-z.+_-]{1,40}$/;

/** dist/build-info.json beside this file's dist/src/entry/ (absent: unknown) */
const DEFAULT_PATH = fileURLToPath(new URL('../../build-info.json', import.meta.url));

export function readBuildInfo(path = DEFAULT_PATH): BuildInfo {
  try {
    const parsed = JSON.parse(readFileSync(path, 'utf8')) as Partial<Record<keyof BuildInfo, unknown>>;
    const field = (v: unknown) => (typeof v === 'string' && FIELD.test(v) ? v : 'unknown');
    return { version: field(parsed.version), commit: field(parsed.commit) };
  } catch {
    return UNKNOWN;
  }
}

/** `0.1.0+1a2b3c4d5e6f`: one string for the registration and `status` */
export function buildLabel(info: BuildInfo): string {
  return `${info.version}+${info.commit}`;
}

/** `shardgate_build_info{version,commit} 1` (the Prometheus convention for what a process runs; the registry adds `shardgate_`) */
export function registerBuildInfo(metrics: Metrics, info: BuildInfo): void {
  metrics.gauge({
    name: 'build_info',
    help: 'the build this process runs: package version and git commit (value always 1)',
    labelNames: ['version', 'commit'],
    collect: (g) => g.set({ version: info.version, commit: info.commit }, 1),
  });
}
