/**
 * The stack's HAProxy: `.stack/haproxy.cfg` rendered from the one template (haproxy-config.ts)
 * at every start, run in the foreground (`-db`) as a tracked child, runtime API on
 * `.stack/haproxy.sock` (mode 600, level admin) for `shardgate-ctl lb sync`, which also fills
 * `.stack/cors-origins.map` in HAProxy's memory (written empty here).
 * The config is checked with `haproxy -c` before the start, so a bad render fails `up` with
 * HAProxy's own message instead of a process that dies silently.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CORS_MAP_FILE, CORS_MAP_SEED, localServers, renderHaproxyConfig } from './haproxy-config.js';
import { HAPROXY_SOCKET, STATE_DIR } from './paths.js';
import { binary } from './preflight.js';
import { startProcess } from './process-manager.js';
import { topology } from './topology.js';

const run = promisify(execFile);
export const HAPROXY_CONFIG = join(STATE_DIR, 'haproxy.cfg');
/** the CORS origins map (haproxy-config.ts corsRules): seeded empty at every start, filled by lb sync */
export const HAPROXY_CORS_MAP = join(STATE_DIR, CORS_MAP_FILE);

/**
 * SHARDGATE_LB_CREDENTIAL_RATE: credential POSTs per source address and minute (haproxy-config.ts);
 * unset or 0, no limit. Anything but a whole number 0–1000000 stops `stack up` naming it.
 */
export function credentialRateOf(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.SHARDGATE_LB_CREDENTIAL_RATE?.trim();
  if (raw === undefined || raw === '') return 0;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n <= 1_000_000)) {
    throw new Error(
      `invalid SHARDGATE_LB_CREDENTIAL_RATE "${raw.slice(0, 40)}": a whole number 0-1000000 (credential POSTs per source address and minute; 0 = no limit)`,
    );
  }
  return n;
}

export function renderLocalHaproxyConfig(): string {
  // SHARDGATE_LB_TENANT_AFFINITY=1: balance by X-Tenant-ID (consistent hash), 400 without it
  const tenantAffinity = process.env.SHARDGATE_LB_TENANT_AFFINITY === '1';
  return renderHaproxyConfig({
    bindHost: topology.host,
    servers: localServers(),
    socketPath: HAPROXY_SOCKET,
    tenantAffinity,
    credentialRatePerMinute: credentialRateOf(),
    corsMapFile: HAPROXY_CORS_MAP,
  });
}

export function writeHaproxyConfig(): string {
  writeFileSync(HAPROXY_CORS_MAP, CORS_MAP_SEED);
  writeFileSync(HAPROXY_CONFIG, renderLocalHaproxyConfig());
  return HAPROXY_CONFIG;
}

export async function startHaproxy(): Promise<number> {
  const file = writeHaproxyConfig();
  try {
    await run(binary('haproxy'), ['-c', '-q', '-f', file]);
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string };
    throw new Error(`haproxy rejects ${file}:\n${(e.stderr || e.stdout || String(error)).trim()}`);
  }
  return startProcess({ name: topology.haproxy.name, command: binary('haproxy'), args: ['-db', '-f', file] });
}
