/**
 * `npm run stack -- up|down|status [--json]|logs [name] [-n lines]` — the local topology of
 * CONTRACT.md §2 as plain processes. Exit 0 on success; `status` exits 1 unless every process
 * is running and healthy.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderDockerHaproxyConfig } from './haproxy-config.js';
import { REPO_ROOT } from './paths.js';
import { down, logFile, status, up } from './stack.js';
import { topology } from './topology.js';

function tail(file: string, lines: number): string {
  if (!existsSync(file)) return '(no log yet)';
  return readFileSync(file, 'utf8')
    .split('\n')
    .slice(-lines - 1)
    .join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case 'up':
      await up();
      return 0;
    case 'down':
      await down();
      return 0;
    case 'status': {
      const rows = await status();
      if (rest.includes('--json')) {
        console.log(JSON.stringify(rows, null, 2));
      } else {
        console.log(`${'process'.padEnd(18)}${'pid'.padEnd(9)}${'port'.padEnd(7)}state`);
        for (const r of rows) {
          const health = r.state === 'running' ? (r.healthy ? 'healthy' : 'unhealthy') : r.state;
          console.log(
            `${r.name.padEnd(18)}${String(r.pid ?? '-').padEnd(9)}${String(r.port ?? '-').padEnd(7)}${health}`,
          );
        }
      }
      return rows.every((r) => r.healthy) ? 0 : 1;
    }
    case 'render-haproxy': {
      // docker/haproxy/haproxy.cfg is generated from the same renderer as the local stack's
      const file = join(REPO_ROOT, 'docker', 'haproxy', 'haproxy.cfg');
      writeFileSync(file, renderDockerHaproxyConfig());
      console.log(`wrote ${file}`);
      return 0;
    }
    case 'logs': {
      const n = rest.indexOf('-n') >= 0 ? Number(rest[rest.indexOf('-n') + 1]) : 40;
      const name = rest.find((a, i) => !a.startsWith('-') && rest[i - 1] !== '-n');
      const names = name ? [name] : (await status()).map((r) => r.name);
      for (const nm of names) console.log(`==> ${nm} <==\n${tail(logFile(nm), n)}`);
      return 0;
    }
    default:
      console.error(`usage: npm run stack -- up|down|status [--json]|logs [name] [-n lines]|render-haproxy
processes: ${(await status()).map((r) => r.name).join(', ')}; state in ${topology.stateDir}/`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`stack: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(1);
  },
);
