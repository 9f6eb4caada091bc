/**
 * `npm run stack -- docker-secrets`: the secrets docker/compose.yml requires, generated once into
 * `docker/.env` (git-ignored, mode 0600), which compose reads from the compose file's directory.
 * Values already in the file (or set by the operator) are kept, so running it again never changes
 * a password that a MariaDB volume was initialised with. Nothing is printed but the names.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

export const DOCKER_ENV_FILE = join(REPO_ROOT, 'docker', '.env');

/** every secret compose.yml requires (`${NAME:?…}`), and how many random bytes each gets */
export const DOCKER_SECRETS = {
  SHARDGATE_JWT_SECRET: 32,
  SHARDGATE_DB_PASSWORD: 24,
  MARIADB_ROOT_PASSWORD: 24,
  REPL_PASSWORD: 24,
} as const;

export type DockerSecret = keyof typeof DOCKER_SECRETS;

/** NAME=value lines of an env file (blank lines and # comments skipped) */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m && m[2]!.trim() !== '') out.set(m[1]!, m[2]!.trim());
  }
  return out;
}

/**
 * Write `file` with every secret of DOCKER_SECRETS: kept when present, else random (base64url,
 * so it needs no quoting in SQL, shell or YAML). Other lines of the file are kept as they were.
 */
export function writeDockerSecrets(file = DOCKER_ENV_FILE): {
  created: DockerSecret[];
  kept: DockerSecret[];
} {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const present = parseEnvFile(text);
  const created: DockerSecret[] = [];
  const kept: DockerSecret[] = [];
  const lines: string[] = [];
  for (const [name, bytes] of Object.entries(DOCKER_SECRETS) as [DockerSecret, number][]) {
    if (present.has(name)) kept.push(name);
    else {
      created.push(name);
      lines.push(`${name}=${randomBytes(bytes).toString('base64url')}`);
    }
  }
  const head =
    text === '' ? '# secrets of docker/compose.yml (npm run stack -- docker-secrets); never commit\n' : text;
  const body = head.endsWith('\n') || head === '' ? head : `${head}\n`;
  writeFileSync(file, body + lines.map((l) => `${l}\n`).join(''), { mode: 0o600 });
  chmodSync(file, 0o600);
  return { created, kept };
}
