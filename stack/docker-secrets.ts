/**
 * `npm run stack -- docker-secrets`: the secrets docker/compose.yml requires, generated once into
 * `docker/.env` (git-ignored, mode 0600), which compose reads from the compose file's directory.
 * Values already in the file (or set by the operator) are kept, so running it again never changes
 * a password that a MariaDB volume was initialised with. Nothing is printed but the names.
 *
 * The file is read as compose reads it: CRLF line ends, `export NAME=value`, and a value in
 * single or double quotes are recognised, so an edited or copied file never gets a second,
 * different value of a secret it already has. A secret set in the environment of the shell
 * (non-empty) is not written: compose prefers the shell's value over the file's, so it is
 * reported as kept from the environment instead of generating one that would not be used.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './paths.js';

export const DOCKER_ENV_FILE = join(REPO_ROOT, 'docker', '.env');

/**
 * every secret compose.yml requires (`${NAME:?…}`), and how many random bytes each gets.
 * SHARDGATE_RABBITMQ_PASSWORD is the password of RabbitMQ's `shardgate` user, which compose also
 * puts into the AMQP URLs: base64url needs no URL-encoding there.
 */
export const DOCKER_SECRETS = {
  SHARDGATE_JWT_SECRET: 32,
  SHARDGATE_DB_PASSWORD: 24,
  MARIADB_ROOT_PASSWORD: 24,
  REPL_PASSWORD: 24,
  SHARDGATE_RABBITMQ_PASSWORD: 24,
} as const;

export type DockerSecret = keyof typeof DOCKER_SECRETS;

/**
 * NAME=value lines of an env file (blank lines and # comments skipped), as compose reads them:
 * a line may end in CRLF, start with `export `, and hold its value in single or double quotes;
 * an unquoted value ends at ` #` (a comment). A name with an empty value counts as absent
 * (compose's `${NAME:?}` refuses it too).
 */
export function parseEnvFile(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m) continue;
    const value = envValue(m[2]!);
    if (value !== '') out.set(m[1]!, value);
  }
  return out;
}

function envValue(raw: string): string {
  const quote = raw[0];
  if ((quote === '"' || quote === "'") && raw.length >= 2) {
    const end = raw.indexOf(quote, 1);
    if (end > 0) return raw.slice(1, end);
  }
  return raw.replace(/\s+#.*$/, '').trim();
}

/**
 * Write `file` with every secret of DOCKER_SECRETS: kept when present in the file, left out when
 * set in `env` (the shell's value wins in compose), else random (base64url, so it needs no quoting
 * in SQL, shell or YAML). Other lines of the file are kept as they were.
 */
export function writeDockerSecrets(
  file = DOCKER_ENV_FILE,
  env: NodeJS.ProcessEnv = process.env,
): {
  created: DockerSecret[];
  /** not generated: already in the file, or set in the environment (those also in fromEnvironment) */
  kept: DockerSecret[];
  /** not in the file and not written to it, set in the environment: compose takes that value */
  fromEnvironment: DockerSecret[];
} {
  const text = existsSync(file) ? readFileSync(file, 'utf8') : '';
  const present = parseEnvFile(text);
  const created: DockerSecret[] = [];
  const kept: DockerSecret[] = [];
  const fromEnvironment: DockerSecret[] = [];
  const lines: string[] = [];
  for (const [name, bytes] of Object.entries(DOCKER_SECRETS) as [DockerSecret, number][]) {
    if (present.has(name)) kept.push(name);
    else if (env[name]) {
      kept.push(name);
      fromEnvironment.push(name);
    } else {
      created.push(name);
      lines.push(`${name}=${randomBytes(bytes).toString('base64url')}`);
    }
  }
  const head =
    text === '' ? '# secrets of docker/compose.yml (npm run stack -- docker-secrets); never commit\n' : text;
  // a file with CRLF line ends gets its new lines with CRLF too
  const eol = /\r\n/.test(head) ? '\r\n' : '\n';
  const body = head.endsWith('\n') || head === '' ? head : `${head}${eol}`;
  writeFileSync(file, body + lines.map((l) => `${l}${eol}`).join(''), { mode: 0o600 });
  chmodSync(file, 0o600);
  return { created, kept, fromEnvironment };
}

/** the line `npm run stack -- docker-secrets` prints about what it did to `file` */
export function describeDockerSecrets(
  file: string,
  r: { created: DockerSecret[]; kept: DockerSecret[]; fromEnvironment: DockerSecret[] },
): string {
  const inFile = r.kept.filter((name) => !r.fromEnvironment.includes(name));
  return `wrote ${file} (mode 600): ${r.created.length ? `generated ${r.created.join(', ')}` : 'nothing new'}${
    inFile.length ? `; kept ${inFile.join(', ')}` : ''
  }${r.fromEnvironment.length ? `; kept from the environment (not written): ${r.fromEnvironment.join(', ')}` : ''}`;
}
