/**
 * `npm run stack -- <command>`: the local topology of CONTRACT.md §2 as plain processes.
 *
 *   up                      start what is missing; returns once HAProxy answers /health/ready
 *   down                    stop every process the stack started (by pid), keep the data
 *   status [--json]         every process: pid, port, state, probe; exit 0 only when all serve
 *   logs [name] [-n lines]  the tail of one log, or of all
 *   render-haproxy [--docker]  print the local HAProxy config, or (--docker) write
 *                           docker/haproxy/haproxy.cfg from the same template
 *   render-docker           write every generated file of docker/ (stack/docker-config.ts)
 *   docker-secrets          write docker/.env with the secrets compose.yml requires (kept if set)
 *
 * Exit codes: 0 success; 1 failure (one line on stderr first, details after).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeDockerFiles } from './docker-config.js';
import { DOCKER_ENV_FILE, describeDockerSecrets, writeDockerSecrets } from './docker-secrets.js';
import { renderLocalHaproxyConfig } from './haproxy.js';
import { renderDockerHaproxyConfig } from './haproxy-config.js';
import { REPO_ROOT } from './paths.js';
import { processSpecs } from './process-specs.js';
import { down, logFile, type StatusRow, status, up } from './stack.js';
import { topology } from './topology.js';

const USAGE = `usage: npm run stack -- up | down | status [--json] | logs [name] [-n lines] | render-haproxy [--docker] | render-docker | docker-secrets
processes: ${processSpecs()
  .map((s) => s.name)
  .join(', ')}; state in ${topology.stateDir}/`;

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log yet)';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
}

function health(r: StatusRow): string {
  if (r.state === 'not built') return 'not built yet';
  if (r.state !== 'running') return r.state;
  return r.healthy ? 'healthy' : 'unhealthy';
}

function printTable(rows: StatusRow[]): void {
  const cols = [
    ['PROCESS', ...rows.map((r) => r.name)],
    ['PID', ...rows.map((r) => String(r.pid ?? '-'))],
    ['PORT', ...rows.map((r) => String(r.port ?? '-'))],
    ['HEALTH', ...rows.map(health)],
  ];
  const widths = cols.map((c) => Math.max(...c.map((s) => s.length)) + 2);
  for (let i = 0; i <= rows.length; i++) {
    const line = cols.map((c, k) => c[i]!.padEnd(widths[k]!)).join('');
    const detail = i > 0 ? rows[i - 1]!.detail : 'DETAIL';
    console.log(`${line}${detail ?? ''}`.trimEnd());
  }
}

function option(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function main([cmd, ...args]: string[]): Promise<number> {
  switch (cmd) {
    case 'up':
      await up();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status': {
      const rows = await status();
      if (args.includes('--json')) console.log(JSON.stringify(rows, null, 2));
      else printTable(rows);
      return rows.every((r) => r.healthy) ? 0 : 1;
    }
    case 'logs': {
      const n = Number(option(args, '-n') ?? 40);
      if (!Number.isInteger(n) || n <= 0) throw new Error(`-n wants a positive number of lines`);
      const names = processSpecs().map((s) => s.name);
      const name = args.find((a, i) => !a.startsWith('-') && args[i - 1] !== '-n');
      if (name && !names.includes(name))
        throw new Error(`no process ${name}; processes: ${names.join(', ')}`);
      for (const nm of name ? [name] : names) {
        if (!name) console.log(`==> ${logFile(nm)} <==`);
        console.log(tail(logFile(nm), n));
      }
      return 0;
    }
    case 'render-haproxy': {
      if (!args.includes('--docker')) {
        process.stdout.write(renderLocalHaproxyConfig());
        return 0;
      }
      const file = join(REPO_ROOT, 'docker', 'haproxy', 'haproxy.cfg');
      writeFileSync(file, renderDockerHaproxyConfig());
      console.log(`wrote ${file}`);
      return 0;
    }
    case 'render-docker':
      for (const file of writeDockerFiles()) console.log(`wrote ${file}`);
      return 0;
    case 'docker-secrets':
      console.log(describeDockerSecrets(DOCKER_ENV_FILE, writeDockerSecrets()));
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      console.log(USAGE);
      return cmd === undefined ? 1 : 0;
    default:
      console.error(`stack: unknown command ${cmd}\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const message = error instanceof Error ? error.message : String(error);
    console.error(`stack: ${message}`);
    process.exit(1);
  },
);
